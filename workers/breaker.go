package workers

import (
	"context"
	"strconv"
	"time"

	"github.com/ec2-executor/ec2-executor/provision"
	"github.com/ec2-executor/ec2-executor/settings"
)

// Breakers are the spot breakers open now under the instance settings in.
func (f *Fleet) Breakers(in settings.Instance) ([]Breaker, error) {
	if in.SpotInterruptionsLimit <= 0 {
		return nil, nil
	}
	window, cooldown := in.SpotInterruptionsWindow.Duration, in.SpotCooldown.Duration
	ins, err := Interruptions(f.s.StateDir, f.now().Add(-window-cooldown))
	if err != nil {
		return nil, err
	}
	return OpenBreakers(ins, in.SpotInterruptionsLimit, window, cooldown, f.now()), nil
}

// withBreakers returns the choices with those an open breaker covers turned
// on-demand (without repeating a choice that already was), and says so once per
// breaker.
func (f *Fleet) withBreakers(ctx context.Context, in settings.Instance, choices []provision.Choice) []provision.Choice {
	if !anySpot(choices) {
		return choices
	}
	open, err := f.Breakers(in)
	if err != nil {
		f.log.Warn("Could not read the record of spot interruptions: the spot breaker is not applied", "error", err)
		return choices
	}
	if len(open) == 0 {
		return choices
	}
	zones := f.choiceZones(ctx, choices)
	said := map[Breaker]bool{}
	seen := map[provision.Choice]bool{}
	var out []provision.Choice
	for _, c := range choices {
		if b, ok := covering(open, c, zones); ok {
			if !said[b] {
				said[b] = true
				f.log.Warn("Spot skipped for "+b.Type+" in "+b.Zone+" until "+b.Until.UTC().Format(time.TimeOnly)+"Z: EC2 reclaimed "+
					strconv.Itoa(b.Count)+" of its spot workers within "+b.Window.String()+" (instance.spot_interruptions_limit); launching on-demand there",
					"instance_type", b.Type, "zone", b.Zone)
			}
			c.Spot = false
		}
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// covering is the open breaker that covers spot choice c, if any. A choice whose
// zone is unknown (the launch template's subnet, or a failed lookup) is covered by
// any open breaker of its type: a breaker errs on the side of on-demand.
func covering(open []Breaker, c provision.Choice, zones map[string]string) (Breaker, bool) {
	if !c.Spot {
		return Breaker{}, false
	}
	zone, known := zones[c.SubnetID]
	for _, b := range open {
		if b.Type == c.InstanceType && (!known || b.Zone == zone) {
			return b, true
		}
	}
	return Breaker{}, false
}

// choiceZones maps the spot choices' subnets to their zones (one DescribeSubnets).
func (f *Fleet) choiceZones(ctx context.Context, choices []provision.Choice) map[string]string {
	var ids []string
	seen := map[string]bool{}
	for _, c := range choices {
		if c.Spot && c.SubnetID != "" && !seen[c.SubnetID] {
			seen[c.SubnetID] = true
			ids = append(ids, c.SubnetID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	zones, err := f.prov.SubnetZones(ctx, ids)
	if err != nil {
		f.log.Warn("Could not look up the subnets' zones: the spot breaker covers all of them", "error", err)
	}
	return zones
}

func anySpot(choices []provision.Choice) bool {
	for _, c := range choices {
		if c.Spot {
			return true
		}
	}
	return false
}
