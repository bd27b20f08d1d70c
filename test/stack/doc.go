// Package stack runs ec2-executor's whole path on one machine with real components on
// loopback: moto_server (EC2, IAM, ECR) seeded through the SDK, Debian's dockerd, an
// htpasswd docker-registry holding locally built images, cloud-init's schema
// validator, and a boot simulator that gives every instance moto reports running a
// real OpenSSH sshd on its loopback (127.0.16.0/20) private IP with the keys from its own user data.
// A terminated worker goes the way an EC2 instance does: its sshd (and own dockerd,
// if it has one) stops, and what its job left on the shared dockerd is removed.
//
// Every process it starts is stopped by its PID. It never dials a non-loopback address
// and never pulls from the internet. See shared/docs/test-stack.md.
package stack
