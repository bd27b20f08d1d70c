// Package prices says what a worker cost its job: its hourly price (on-demand from
// the manager's table that `ec2-executor prices update` fetched from AWS's Price List
// API, else from a table built into the binary; spot from EC2's
// DescribeSpotPriceHistory, cached per type and zone for an hour) times the time it
// served, and keeps an append-only record of each job's cost on the manager for
// `ec2-executor costs`. A price it does not know is reported as unknown, never
// guessed. It makes no other AWS call.
package prices
