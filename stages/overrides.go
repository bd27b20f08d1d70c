package stages

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ec2-executor/ec2-executor/settings"
)

// CI variables a job may set to choose its worker, each only within the operator's
// [overrides] allow-list. Any other EC2_EXECUTOR_ variable is refused, so a typo never
// silently launches the default.
const (
	overridePrefix      = "EC2_EXECUTOR_"
	VarInstanceType     = overridePrefix + "INSTANCE_TYPE"
	VarMarket           = overridePrefix + "MARKET"
	VarRootVolumeGiB    = overridePrefix + "ROOT_VOLUME_GIB"
	overridesSettingsAt = "the runner's ec2-executor settings, [overrides]"
)

// jobInstance returns the instance settings with the job's overrides applied. Every
// refused override is reported at once, as a build failure naming the variable.
func (d *Driver) jobInstance() (settings.Instance, error) {
	in := d.Settings.Instance // a copy; an override replaces a list, never edits it
	allow := d.Settings.Overrides
	var errs []error
	for _, name := range overrideVars(d.Env.Vars) {
		v := d.Env.Vars[name]
		var err error
		switch name {
		case VarInstanceType:
			err = oneOf(v, allow.InstanceTypes, "instance type")
			in.Types = []string{v}
		case VarMarket:
			err = oneOf(v, allow.Markets, "market")
			in.Market = v
			if v == settings.MarketOnDemand {
				in.SpotMaxPrice = ""
			}
		case VarRootVolumeGiB:
			in.RootVolume.SizeGiB, err = volumeSize(v, allow.MaxRootVolumeGiB)
		default:
			err = fmt.Errorf("is not a variable ec2-executor knows (%s, %s or %s)", VarInstanceType, VarMarket, VarRootVolumeGiB)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("CI variable %s=%q %w", name, v, err))
		}
	}
	if len(errs) > 0 {
		return in, jobError(errors.Join(errs...))
	}
	return in, nil
}

func overrideVars(vars map[string]string) []string {
	var names []string
	for k := range vars {
		if strings.HasPrefix(k, overridePrefix) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return names
}

func oneOf(v string, allowed []string, what string) error {
	switch {
	case len(allowed) == 0:
		return fmt.Errorf("is not allowed: %s permit no %s override", overridesSettingsAt, what)
	case !slices.Contains(allowed, v):
		return fmt.Errorf("is not allowed: the %s must be one of %s", what, strings.Join(allowed, ", "))
	}
	return nil
}

func volumeSize(v string, limit int) (int, error) {
	if limit == 0 {
		return 0, fmt.Errorf("is not allowed: %s permit no root volume override", overridesSettingsAt)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > limit {
		return 0, fmt.Errorf("is not allowed: the root volume size must be a whole number of GiB from 1 to %d", limit)
	}
	return n, nil
}
