package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ec2-executor/ec2-executor/prices"
	"github.com/ec2-executor/ec2-executor/settings"
)

// costsCommand sums the manager's cost record by project and pipeline.
func costsCommand(load func(*cli.Context) (settings.Settings, error), stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "costs",
		Usage: "sum what this manager's jobs' workers cost, by project and pipeline, from its local record",
		Flags: []cli.Flag{&cli.StringFlag{Name: "since", Value: "7d", Usage: "how far back: a Go duration (36h) or days (7d)"}},
		Action: func(c *cli.Context) error {
			s, err := load(c)
			if err != nil {
				return err
			}
			back, err := parseSince(c.String("since"))
			if err != nil {
				return err
			}
			totals, err := prices.Sum(prices.RecordPath(s.StateDir), time.Now().Add(-back))
			if err != nil {
				return err
			}
			return printCosts(stdout, totals, c.String("since"))
		},
	}
}

// parseSince reads "7d" as seven days, else a Go duration.
func parseSince(v string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err == nil && n > 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--since %q: give a positive duration, such as 7d or 36h", v)
	}
	return d, nil
}

func printCosts(out io.Writer, totals []prices.Total, since string) error {
	if len(totals) == 0 {
		_, err := fmt.Fprintf(out, "no jobs in the last %s\n", since)
		return err
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PROJECT\tPIPELINE\tJOBS\tWORKER TIME\tCOST (USD)\tPRICE UNKNOWN")
	var sum float64
	for _, t := range totals {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%.4f\t%d\n", t.Project, t.Pipeline, t.Jobs, (time.Duration(t.Seconds) * time.Second).Round(time.Second), t.Dollars, t.Unknown)
		sum += t.Dollars
	}
	fmt.Fprintf(w, "total\t\t\t\t%.4f\t\n", sum)
	return w.Flush()
}
