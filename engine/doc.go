// Package engine reaches a worker's Docker Engine through an SSH tunnel and runs the
// job's containers there: per-instance keys, a pinned host key, image pulls, the
// builds volume, the build container and script runs streamed to the job log.
//
// It never trusts a host key on first use, never opens a Docker TCP port, and never
// logs registry credentials; it knows nothing about EC2 or the runner's stages.
package engine
