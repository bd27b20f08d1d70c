package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/ec2-executor/ec2-executor/pool"
	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/workers"
)

// poolCommand runs the warm pool until SIGTERM, or asks a running one for its status.
func poolCommand(load func(*cli.Context) (settings.Settings, error), log func() hclog.Logger, stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "pool",
		Usage: "keep pool.idle_count workers ready for jobs and serve claims on pool.socket (run it as a service)",
		Action: func(c *cli.Context) error {
			s, err := load(c)
			if err != nil {
				return err
			}
			if err := workers.CheckPrepull(s); err != nil {
				return err
			}
			clients, err := newAWS(s, log())(c.Context)
			if err != nil {
				return err
			}
			p, err := pool.New(s, pool.Clients{EC2: clients.EC2, SSM: clients.SSM, ECR: clients.ECR, Spot: clients.Spot}, log(), time.Now)
			if err != nil {
				return err
			}
			return p.Run(c.Context)
		},
		Subcommands: []*cli.Command{{
			Name:  "status",
			Usage: "print the running pool's workers by state and its recent claims",
			Action: func(c *cli.Context) error {
				s, err := load(c)
				if err != nil {
					return err
				}
				st, err := pool.QueryStatus(c.Context, s.PoolSocket())
				if err != nil {
					return err
				}
				return printStatus(stdout, st)
			},
		}},
	}
}

func printStatus(out io.Writer, st pool.Status) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
}
