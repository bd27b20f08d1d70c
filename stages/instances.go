package stages

import (
	"context"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"
)

// Instances prints the workers the driver owns: this manager's, or every manager's.
func (d *Driver) Instances(ctx context.Context, allManagers bool, out io.Writer) error {
	prov, _, err := d.provisioner(ctx)
	if err != nil {
		return err
	}
	found, err := prov.Find(ctx, d.ownership(allManagers))
	if err != nil {
		return err
	}
	sort.Slice(found, func(i, j int) bool { return created(found[i]).Before(created(found[j])) })
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tTYPE\tMARKET\tSTATE\tJOB\tMANAGER\tAGE\tADDRESS")
	for _, i := range found {
		age := d.Now().Sub(created(i)).Round(time.Second)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", i.ID, i.Type, i.Market(), i.State,
			i.Tags[TagJobKey], i.Tags[TagManager], age, d.sshHost(i))
	}
	return tw.Flush()
}
