// Package workers is how a job gets and gives back its worker: a lease from a cold
// launch (RunInstances with the job's tags and a fresh cloud-init) or a claim from
// the pool; reaching it over SSH with its pinned keys; releasing it (every instance
// tagged with the job, not only the one in the lease); finding workers by tags;
// listing them; and reaping the ones no job holds any more.
//
// Its Fleet serves three callers, a file set each: a job's stages (get, launch,
// reach, release, giveback, spot reclaims and breakers, architectures), the pool
// (forpool.go: tags, batch launches, a spot worker's notice; the pool makes its
// other EC2 calls through provision itself), and the reaper and operator commands
// (reap, managers, list).
//
// It knows nothing of the runner's stages, containers or registries: stages hands it
// a Job and gets a Lease. It must never log a lease's private key, and never leave an
// instance it launched without a way back to it (an id saved before any later step
// can fail, or tags the reaper and cleanup find it by).
package workers
