package workers

import (
	"context"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"
)

// List prints the workers the driver owns: this manager's, or every manager's.
func (f *Fleet) List(ctx context.Context, allManagers bool, out io.Writer) error {
	found, err := f.prov.Find(ctx, f.ownership(allManagers))
	if err != nil {
		return err
	}
	sort.Slice(found, func(i, j int) bool { return created(found[i]).Before(created(found[j])) })
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tTYPE\tMARKET\tSTATE\tPOOL\tJOB\tMANAGER\tAGE\tADDRESS")
	for _, i := range found {
		age := f.now().Sub(created(i)).Round(time.Second)
		poolState := i.Tags[TagPoolState]
		if poolState == "" {
			poolState = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", i.ID, i.Type, i.Market(), i.State, poolState,
			i.Tags[TagJobKey], i.Tags[TagManager], age, f.sshHost(i))
	}
	return tw.Flush()
}
