// Package cloudinit renders the #cloud-config user data a worker boots with: the
// dedicated SSH user in group docker with the per-instance client key, the per-instance
// SSH host key the driver pins, Docker and the ECR credential helper installed only
// when the AMI lacks them, ec2-executor's daemon.json and Docker config.json fragments
// merged on the worker into whatever the AMI has (Docker restarts only if the file
// changed), the operator's additions, and a readiness marker written once Docker
// answers.
//
// It is pure: settings and keys in, bytes out. It must never generate keys, read
// files or call AWS, so its output can be reviewed (`ec2-executor render-cloud-init`),
// golden-tested and validated by `cloud-init schema`.
package cloudinit
