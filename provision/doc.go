// Package provision owns the EC2 worker lifecycle: launch (RunInstances with the
// driver's tags, IMDSv2 and user data in one call), wait until running with the SDK
// waiter, find the driver's instances by tags, and terminate with confirmation.
//
// It must never leave an instance behind: anything that fails after RunInstances
// returns terminates that instance on a context detached from the job's. SDK types
// stay inside this package; callers see Instance.
package provision
