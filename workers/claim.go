package workers

import (
	"slices"

	"github.com/ec2-executor/ec2-executor/settings"
)

// Spec is what a job needs of a worker, after its allowed overrides: a pool worker
// matches when its type is one of Types, its market fits Market and its root volume
// is RootGiB (0: the AMI's, as the pool launched it).
type Spec struct {
	Types   []string `json:"types"`
	Market  string   `json:"market"`
	RootGiB int      `json:"root_gib"`
	Arch    string   `json:"arch,omitempty"` // of Types: which image a launch for it boots
}

// SpecOf is the spec of the instance settings in.
func SpecOf(in settings.Instance) Spec {
	return Spec{Types: in.Types, Market: in.Market, RootGiB: in.RootVolume.SizeGiB, Arch: in.Arch()}
}

// Fits reports whether a worker of type and market, with a root volume of rootGiB,
// serves s.
func (s Spec) Fits(typ string, spot bool, rootGiB int) bool {
	market := settings.MarketOnDemand
	if spot {
		market = settings.MarketSpot
	}
	marketOK := s.Market == market || (s.Market == settings.MarketSpotFallback)
	return marketOK && slices.Contains(s.Types, typ) && s.RootGiB == rootGiB
}

// Instance is base with the spec's architecture (its image), types, market and
// root volume: the instance settings of the job that asked for it (its overrides
// change only these).
func (s Spec) Instance(base settings.Instance) (settings.Instance, error) {
	arch := s.Arch
	if arch == "" {
		arch = base.Arch()
	}
	in, err := base.ForArch(arch, s.Types)
	if err != nil {
		return base, err
	}
	in.Market, in.RootVolume.SizeGiB = s.Market, s.RootGiB
	if s.Market == settings.MarketOnDemand {
		in.SpotMaxPrice = ""
	}
	return in, nil
}
