package main

import (
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/pricing"
	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/ec2-executor/ec2-executor/prices"
	"github.com/ec2-executor/ec2-executor/provision"
	"github.com/ec2-executor/ec2-executor/settings"
)

// pricesCommand refreshes the manager's on-demand price table from AWS's Price List
// API (prices.Update).
func pricesCommand(load func(*cli.Context) (settings.Settings, error), logger func() hclog.Logger, stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "prices",
		Usage: "the on-demand prices job costs are counted at",
		Subcommands: []*cli.Command{{
			Name:  "update",
			Usage: "fetch today's Linux on-demand prices from AWS's Price List API (pricing:GetProducts) into <state_dir>/prices/ondemand.json",
			Flags: []cli.Flag{&cli.StringSliceFlag{Name: "region", Usage: "a region to fetch (repeatable); aws.region when none"}},
			Action: func(c *cli.Context) error {
				s, err := load(c)
				if err != nil {
					return err
				}
				regions := c.StringSlice("region")
				if len(regions) == 0 {
					regions = []string{s.AWS.Region}
				}
				cfg, err := provision.LoadConfig(c.Context, prices.PricingRegion, s.AWS.Endpoint, logger())
				if err != nil {
					return err
				}
				counts, err := prices.Update(c.Context, pricing.NewFromConfig(cfg), filepath.Join(s.StateDir, "prices"), regions, time.Now())
				if err != nil {
					return err
				}
				for _, r := range slices.Sorted(maps.Keys(counts)) {
					fmt.Fprintf(stdout, "%s: %d instance types' Linux on-demand prices from AWS's Price List API\n", r, counts[r])
				}
				return nil
			},
		}},
	}
}
