// Package cloudinit renders the #cloud-config user data a worker boots with: the
// dedicated SSH user in group docker with the per-instance client key, the per-instance
// SSH host key the driver pins, Docker installed only when the AMI lacks it, and a
// readiness marker written once Docker answers.
//
// It is pure: settings and keys in, bytes out. It must never generate keys, read
// files or call AWS, so its output can be reviewed, golden-tested and validated by
// `cloud-init schema`.
package cloudinit
