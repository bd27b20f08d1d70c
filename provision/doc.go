// Package provision owns the EC2 worker lifecycle: launch (one RunInstances call per
// choice of type, subnet and market, with the driver's tags, IMDSv2 and user data in
// it, moving to the next choice only on capacity errors), wait until running with the
// SDK waiter, find the driver's instances by tags, and terminate with confirmation.
// It also reads AMI ids from SSM parameters, and writes and reads the managers'
// heartbeats there.
//
// It must never leave an instance behind: anything that fails after RunInstances
// returns terminates that instance on a context detached from the job's. SDK types
// stay inside this package; callers see Instance.
package provision
