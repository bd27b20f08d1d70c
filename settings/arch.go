package settings

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Architectures, as EC2 names them (and EC2_EXECUTOR_ARCH takes them).
const (
	ArchX86 = "x86_64"
	ArchARM = "arm64"
)

var architectures = []string{ArchX86, ArchARM}

// ArchImage is what workers of one architecture boot and run on: an [instance.arm64]
// or [instance.x86_64] section, for the jobs that ask for that architecture.
type ArchImage struct {
	AMI          string   `toml:"ami"`
	AMIParameter string   `toml:"ami_ssm_parameter"`
	Types        []string `toml:"types"`
}

func (a ArchImage) set() bool { return a.AMI != "" || a.AMIParameter != "" || len(a.Types) > 0 }

// graviton matches the families of AWS's Arm (Graviton) instance types: a "g"
// among the letters after the generation (t4g, m7g, c6gn, m6gd, im4gn, g5g), and a1.
var graviton = regexp.MustCompile(`^([a-z]+[0-9]+[a-z-]*g[a-z-]*|a1)$`)

// ArchOf is the architecture of an instance type, from its family's name.
func ArchOf(typ string) string {
	family, _, _ := strings.Cut(typ, ".")
	if graviton.MatchString(family) {
		return ArchARM
	}
	return ArchX86
}

// Arch is the architecture of instance.types (x86_64 when they name none).
func (i Instance) Arch() string {
	if len(i.Types) == 0 {
		return ArchX86
	}
	return ArchOf(i.Types[0])
}

// section is the [instance.<arch>] section for arch.
func (i Instance) section(arch string) ArchImage {
	if arch == ArchARM {
		return i.ARM64
	}
	return i.X86_64
}

// ForArch is the instance settings for workers of arch: the top level's when arch is
// theirs, else the image and types of the [instance.<arch>] section. types, when
// given (a job's type override), replace the section's.
func (i Instance) ForArch(arch string, types []string) (Instance, error) {
	for _, t := range types {
		if ArchOf(t) != arch {
			return i, fmt.Errorf("instance type %s is %s, not %s", t, ArchOf(t), arch)
		}
	}
	if arch == i.Arch() {
		if len(types) > 0 {
			i.Types = types
		}
		return i, nil
	}
	sec := i.section(arch)
	if sec.AMI == "" && sec.AMIParameter == "" {
		return i, fmt.Errorf("no %s image: set instance.%s.ami or instance.%s.ami_ssm_parameter", arch, arch, arch)
	}
	i.AMI, i.AMIParameter, i.Types = sec.AMI, sec.AMIParameter, sec.Types
	if len(types) > 0 {
		i.Types = types
	}
	if len(i.Types) == 0 {
		return i, fmt.Errorf("no %s instance types: set instance.%s.types", arch, arch)
	}
	return i, nil
}

// validateArch checks that instance.types share one architecture and that each
// [instance.<arch>] section boots and lists that architecture.
func (i Instance) validateArch(add func(error)) {
	for _, t := range i.Types {
		if a := ArchOf(t); a != i.Arch() {
			add(problem("instance.types", "mix architectures (%s is %s, %s is %s): list one architecture's types, and the other's in [instance.%s]",
				i.Types[0], i.Arch(), t, a, a))
			break
		}
	}
	for _, arch := range architectures {
		sec, name := i.section(arch), "instance."+arch
		if !sec.set() {
			continue
		}
		if sec.AMI != "" && sec.AMIParameter != "" {
			add(problem(name+".ami", "set either ami or ami_ssm_parameter, not both"))
		}
		if sec.AMI != "" && !amiID.MatchString(sec.AMI) {
			add(problem(name+".ami", "%q is not an AMI id (ami-0123456789abcdef0)", sec.AMI))
		}
		if arch != i.Arch() && sec.AMI == "" && sec.AMIParameter == "" {
			add(problem(name, "needs ami or ami_ssm_parameter: its workers cannot boot the %s image of instance.ami", i.Arch()))
		}
		listOf(add, name+".types", sec.Types, instanceType, "an instance type (like c7g.large)", arch != i.Arch())
		for _, t := range sec.Types {
			if ArchOf(t) != arch {
				add(problem(name+".types", "%s is %s, not %s", t, ArchOf(t), arch))
			}
		}
	}
}

// validateArchOverrides checks that each architecture a job may ask for, by
// EC2_EXECUTOR_ARCH or by an instance type, has an image.
func (s Settings) validateArchOverrides(add func(error)) {
	in := s.Instance
	for n, a := range s.Overrides.Architectures {
		if !slices.Contains(architectures, a) {
			add(problem("overrides.architectures", "entry %d %q is not %q or %q", n, a, ArchX86, ArchARM))
			continue
		}
		if _, err := in.ForArch(a, nil); err != nil {
			add(problem("overrides.architectures", "%s: %v", a, err))
		}
	}
	for _, t := range s.Overrides.InstanceTypes {
		if a := ArchOf(t); a != in.Arch() {
			if sec := in.section(a); sec.AMI == "" && sec.AMIParameter == "" {
				add(problem("overrides.instance_types", "%s is %s: set instance.%s.ami or instance.%s.ami_ssm_parameter for it", t, a, a, a))
			}
		}
	}
}

// OtherArch is the architecture instance.types are not.
func (i Instance) OtherArch() string {
	if i.Arch() == ArchARM {
		return ArchX86
	}
	return ArchARM
}

// validatePoolArch checks that a [pool.<arch>] section sizes the other
// architecture's idle workers, which need an [instance.<arch>] image and types.
func (s Settings) validatePoolArch(add func(error)) {
	for _, arch := range architectures {
		n, name := s.Pool.ArchIdle(arch), "pool."+arch+".idle_count"
		switch {
		case n < 0:
			add(problem(name, "must not be negative"))
		case n == 0:
		case arch == s.Instance.Arch():
			add(problem(name, "instance.types are %s, whose idle workers pool.idle_count sizes: [pool.%s] is for the other architecture", arch, arch))
		default:
			if _, err := s.Instance.ForArch(arch, nil); err != nil {
				add(problem(name, "%v", err))
			}
		}
	}
}
