package settings

import "slices"

// Overrides is the operator's allow-list for per-job choices made with CI variables.
// An empty list (or zero bound) forbids that override.
type Overrides struct {
	// InstanceTypes bounds EC2_EXECUTOR_INSTANCE_TYPE.
	InstanceTypes []string `toml:"instance_types"`
	// Markets bounds EC2_EXECUTOR_MARKET.
	Markets []string `toml:"markets"`
	// MaxRootVolumeGiB bounds EC2_EXECUTOR_ROOT_VOLUME_GIB.
	MaxRootVolumeGiB int `toml:"max_root_volume_gib"`
	// Architectures bounds EC2_EXECUTOR_ARCH (x86_64, arm64).
	Architectures []string `toml:"architectures"`
}

func (o Overrides) validate(add func(error)) {
	listOf(add, "overrides.instance_types", o.InstanceTypes, instanceType, "an instance type (like c6i.large)", false)
	for n, m := range o.Markets {
		if !slices.Contains(markets, m) {
			add(problem("overrides.markets", "entry %d %q is not %q, %q or %q", n, m, MarketOnDemand, MarketSpot, MarketSpotFallback))
		}
	}
	if o.MaxRootVolumeGiB < 0 || o.MaxRootVolumeGiB > 65536 {
		add(problem("overrides.max_root_volume_gib", "must be between 0 (no override) and 65536, got %d", o.MaxRootVolumeGiB))
	}
}
