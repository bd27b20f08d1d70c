// Package statefile writes the driver's state files: a job's lease, the pool's
// records and the ECR token cache. Each holds a secret (a worker's private key, a
// registry token), so each is written the one way here: mode 0600 from its first
// byte, synced, and renamed over the old file, so that a process killed mid-write
// leaves the previous file whole. It must never log or return a file's content.
package statefile
