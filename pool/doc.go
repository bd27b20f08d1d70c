// Package pool is the long-running `ec2-executor pool`: it keeps pool.idle_count
// workers booted and ready (sshd with the pinned key, Docker, pre-pulled images),
// hands one to each job that claims it on a unix socket without any EC2 call on the
// job's path (a claim of a stopped worker waits for its one StartInstances, shared
// with the claims that arrive together; a claim that finds nothing has a worker
// launched for it, batched likewise), ends the workers of finished jobs in batches,
// and exports what it does, and what workers cost, as Prometheus metrics.
//
// Its files: pool.go runs the loop (tick); reconcile.go compares its records with
// EC2; fill.go and resize.go bring it to its size; claims.go, stopped.go,
// launchfor.go, reuse.go and ending.go answer jobs; server.go is the socket;
// ready.go checks a booted worker; book.go is the records; paced.go and metrics.go
// count and pace its calls; cost.go and heartbeat.go are the rest of its duties.
//
// It is held to a higher bar than a stage process. It learns the state of all its
// workers from one filtered DescribeInstances per poll and paces every EC2 action
// below EC2's buckets. Its records (workers and their keys) are one 0600 file under
// state_dir, written before any answer that depends on them, so a pool killed at any
// moment restarts without losing a worker or handing one to two jobs: it adopts the
// workers its records and EC2 agree on after checking them over SSH, and terminates
// the ones it cannot verify. It must never log a worker's private key, and never give
// a key to a peer whose credentials it has not checked.
package pool
