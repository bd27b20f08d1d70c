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
	VarArch             = overridePrefix + "ARCH"
	overridesSettingsAt = "the runner's ec2-executor settings, [overrides]"
)

// jobInstance returns the instance settings with the job's overrides applied. Every
// refused override is reported at once, as a build failure naming the variable. An
// architecture other than instance.types' (asked for by EC2_EXECUTOR_ARCH, or by
// an instance type of it) takes its image, and its types, from [instance.<arch>].
func (d *Driver) jobInstance() (settings.Instance, error) {
	in := d.Settings.Instance // a copy; an override replaces a list, never edits it
	allow := d.Settings.Overrides
	var errs []error
	var arch string
	var types []string
	for _, name := range overrideVars(d.Env.Vars) {
		v := d.Env.Vars[name]
		var err error
		switch name {
		case VarInstanceType:
			err = oneOf(v, allow.InstanceTypes, "instance type")
			types = []string{v}
		case VarArch:
			err = oneOf(v, allow.Architectures, "architecture")
			arch = v
		case VarMarket:
			err = oneOf(v, allow.Markets, "market")
			in.Market = v
			if v == settings.MarketOnDemand {
				in.SpotMaxPrice = ""
			}
		case VarRootVolumeGiB:
			in.RootVolume.SizeGiB, err = volumeSize(v, allow.MaxRootVolumeGiB)
		default:
			err = fmt.Errorf("is not a variable ec2-executor knows (%s, %s, %s or %s)", VarInstanceType, VarMarket, VarRootVolumeGiB, VarArch)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("CI variable %s=%q %w", name, v, err))
		}
	}
	if arch == "" && len(types) > 0 {
		arch = settings.ArchOf(types[0])
	}
	if arch != "" && len(errs) == 0 {
		var err error
		if in, err = in.ForArch(arch, types); err != nil {
			errs = append(errs, fmt.Errorf("CI variables %s: %w", strings.Join(overrideVars(d.Env.Vars), ", "), err))
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
