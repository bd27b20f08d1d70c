// Package examples holds the operator-facing examples (runner config.toml, driver
// settings, IAM policies); its tests load and validate each one.
package examples

import _ "embed"

// WorkerTrustPolicy is the trust policy of the workers' IAM role: it lets EC2 assume
// the role for the instance profile. The local stack seeds moto's role with it, so the
// example operators copy is the one the tests use.
//
//go:embed iam/worker-trust-policy.json
var WorkerTrustPolicy string

// ManagerPolicy is the least-privilege policy for the runner manager: it may launch
// and terminate only instances tagged managed-by=ec2-executor and pass only the
// worker role.
//
//go:embed iam/manager-policy.json
var ManagerPolicy string

// WorkerPolicy lets workers pull from ECR with their instance profile.
//
//go:embed iam/worker-policy.json
var WorkerPolicy string
