package settings

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Instance says how each worker is launched.
type Instance struct {
	// AMI is an image id; AMIParameter an SSM parameter holding one (resolved once per
	// prepare). Exactly one is set, or neither when the launch template names the image.
	AMI          string `toml:"ami"`
	AMIParameter string `toml:"ami_ssm_parameter"`
	// LaunchTemplate supplies defaults; every value set here overrides it.
	LaunchTemplate LaunchTemplate `toml:"launch_template"`
	// Types and SubnetIDs are tried in order (every subnet for the first type, then
	// the next type) when EC2 reports a capacity error.
	Types              []string `toml:"types"`
	SubnetIDs          []string `toml:"subnet_ids"`
	SecurityGroupIDs   []string `toml:"security_group_ids"`
	IAMInstanceProfile string   `toml:"iam_instance_profile"`
	// Market is on-demand, spot, or spot-or-on-demand (every spot choice first).
	Market             string            `toml:"market"`
	SpotMaxPrice       string            `toml:"spot_max_price"`
	EBSOptimized       bool              `toml:"ebs_optimized"`
	DetailedMonitoring bool              `toml:"detailed_monitoring"`
	RootVolume         RootVolume        `toml:"root_volume"`
	MetadataHopLimit   int               `toml:"metadata_hop_limit"`
	Tags               map[string]string `toml:"tags"`
	// MaxLifetime is the longest a worker may live; it is tagged on the instance as its
	// expiry, after which the reaper terminates it whatever its state.
	MaxLifetime   Duration `toml:"max_lifetime"`
	LaunchTimeout Duration `toml:"launch_timeout"`
	PollInterval  Duration `toml:"poll_interval"`
	// SpotInterruptionsLimit reclaims of one instance type in one zone within
	// SpotInterruptionsWindow make launches skip spot for that type and zone for
	// SpotCooldown: a zone short of spot capacity reclaims again soon, and a job
	// that loses its worker runs again from the start. 0 turns the breaker off.
	SpotInterruptionsLimit  int      `toml:"spot_interruptions_limit"`
	SpotInterruptionsWindow Duration `toml:"spot_interruptions_window"`
	SpotCooldown            Duration `toml:"spot_cooldown"`
	// ARM64 and X86_64 give the image (and types) of the architecture that
	// instance.types are not, for jobs that ask for it (EC2_EXECUTOR_ARCH, or an
	// instance type override of that architecture).
	ARM64  ArchImage `toml:"arm64"`
	X86_64 ArchImage `toml:"x86_64"`
}

// LaunchTemplate names an EC2 launch template by id or name.
type LaunchTemplate struct {
	ID      string `toml:"id"`
	Name    string `toml:"name"`
	Version string `toml:"version"`
}

// Set reports whether a launch template is configured.
func (l LaunchTemplate) Set() bool { return l.ID != "" || l.Name != "" }

// RootVolume overrides the AMI's root EBS volume. Zero values keep the AMI's.
type RootVolume struct {
	// DeviceName is the AMI's root device; empty asks EC2 (one DescribeImages call).
	DeviceName string `toml:"device_name"`
	SizeGiB    int    `toml:"size_gib"`
	Type       string `toml:"type"`
	IOPS       int    `toml:"iops"`
	Throughput int    `toml:"throughput"`
	Encrypted  bool   `toml:"encrypted"`
	KMSKeyID   string `toml:"kms_key_id"`
}

// Market values.
const (
	MarketOnDemand     = "on-demand"
	MarketSpot         = "spot"
	MarketSpotFallback = "spot-or-on-demand"
)

var markets = []string{MarketOnDemand, MarketSpot, MarketSpotFallback}

var (
	amiID          = regexp.MustCompile(`^ami-[0-9a-f]{8,17}$`)
	ssmName        = regexp.MustCompile(`^/?[a-zA-Z0-9_.\-/]+$`) // and at most 1,000 long: a counted {1,1000} costs every stage process 11 ms to compile
	templateID     = regexp.MustCompile(`^lt-[0-9a-f]{8,17}$`)
	templateName   = regexp.MustCompile(`^[a-zA-Z0-9()./_-]+$`) // and 3 to 128 long: counted, it compiled to 100 KiB that every process kept
	subnetID       = regexp.MustCompile(`^subnet-[0-9a-f]{8,17}$`)
	sgID           = regexp.MustCompile(`^sg-[0-9a-f]{8,17}$`)
	instanceType   = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9-]+$`)
	profileName    = regexp.MustCompile(`^[\w+=,.@-]+$`) // and at most 128 long, for the same reason
	deviceName     = regexp.MustCompile(`^/dev/[a-z0-9]+$`)
	volumeTypes    = []string{"gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"}
	provisionedIOs = []string{"gp3", "io1", "io2"}
)

func (i Instance) validate(add func(error)) {
	i.validateImage(add)
	i.validateTemplate(add)
	listOf(add, "instance.types", i.Types, instanceType, "an instance type (like c6i.large)", !i.LaunchTemplate.Set())
	listOf(add, "instance.subnet_ids", i.SubnetIDs, subnetID, "a subnet id (subnet-0123456789abcdef0)", !i.LaunchTemplate.Set())
	listOf(add, "instance.security_group_ids", i.SecurityGroupIDs, sgID, "a security group id (sg-0123456789abcdef0)", false)
	if p := i.IAMInstanceProfile; p != "" && !strings.HasPrefix(p, "arn:") && (len(p) > 128 || !profileName.MatchString(p)) {
		add(problem("instance.iam_instance_profile", "%q is neither an instance profile name nor an ARN", p))
	}
	i.validateMarket(add)
	i.RootVolume.validate(add)
	if i.MetadataHopLimit < 1 || i.MetadataHopLimit > 64 {
		add(problem("instance.metadata_hop_limit", "must be between 1 and 64, got %d", i.MetadataHopLimit))
	}
	validateTags(add, i.Tags)
	i.validateArch(add)
	positive(add, "instance.max_lifetime", i.MaxLifetime.Duration)
	positive(add, "instance.launch_timeout", i.LaunchTimeout.Duration)
	positive(add, "instance.poll_interval", i.PollInterval.Duration)
}

func (i Instance) validateImage(add func(error)) {
	switch {
	case i.AMI != "" && i.AMIParameter != "":
		add(problem("instance.ami", "set either instance.ami or instance.ami_ssm_parameter, not both"))
	case i.AMI == "" && i.AMIParameter == "" && !i.LaunchTemplate.Set():
		add(problem("instance.ami", "must not be empty: set instance.ami, instance.ami_ssm_parameter or instance.launch_template"))
	case i.AMI != "" && !amiID.MatchString(i.AMI):
		add(problem("instance.ami", "%q is not an AMI id (ami-0123456789abcdef0)", i.AMI))
	case i.AMIParameter != "" && (len(i.AMIParameter) > 1000 || !ssmName.MatchString(i.AMIParameter)):
		add(problem("instance.ami_ssm_parameter", "%q is not an SSM parameter name", i.AMIParameter))
	}
}

func (i Instance) validateTemplate(add func(error)) {
	lt := i.LaunchTemplate
	switch {
	case lt.ID != "" && lt.Name != "":
		add(problem("instance.launch_template", "set id or name, not both"))
	case lt.ID != "" && !templateID.MatchString(lt.ID):
		add(problem("instance.launch_template.id", "%q is not a launch template id (lt-0123456789abcdef0)", lt.ID))
	case lt.Name != "" && (len(lt.Name) < 3 || len(lt.Name) > 128 || !templateName.MatchString(lt.Name)):
		add(problem("instance.launch_template.name", "%q is not a launch template name", lt.Name))
	case !lt.Set() && lt.Version != "":
		add(problem("instance.launch_template.version", "is set but no launch template id or name is"))
	}
	if v := lt.Version; v != "" && v != "$Latest" && v != "$Default" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 {
			add(problem("instance.launch_template.version", "%q must be a version number, $Latest or $Default", v))
		}
	}
}

func (i Instance) validateMarket(add func(error)) {
	if !slices.Contains(markets, i.Market) {
		add(problem("instance.market", "must be %q, %q or %q, got %q", MarketOnDemand, MarketSpot, MarketSpotFallback, i.Market))
	}
	if i.SpotInterruptionsLimit < 0 {
		add(problem("instance.spot_interruptions_limit", "must be 0 (no breaker) or more, got %d", i.SpotInterruptionsLimit))
	}
	if i.SpotInterruptionsLimit > 0 {
		positive(add, "instance.spot_interruptions_window", i.SpotInterruptionsWindow.Duration)
		positive(add, "instance.spot_cooldown", i.SpotCooldown.Duration)
	}
	if i.SpotMaxPrice == "" {
		return
	}
	if i.Market == MarketOnDemand {
		add(problem("instance.spot_max_price", "is set but instance.market is %q", MarketOnDemand))
	}
	if p, err := strconv.ParseFloat(i.SpotMaxPrice, 64); err != nil || p <= 0 {
		add(problem("instance.spot_max_price", "%q must be a positive price in USD per hour, like \"0.05\"", i.SpotMaxPrice))
	}
}

func (v RootVolume) validate(add func(error)) {
	if v.DeviceName != "" && !deviceName.MatchString(v.DeviceName) {
		add(problem("instance.root_volume.device_name", "%q is not a device name like /dev/xvda", v.DeviceName))
	}
	if v.SizeGiB < 0 || v.SizeGiB > 65536 {
		add(problem("instance.root_volume.size_gib", "must be between 1 and 65536 GiB (0 keeps the AMI's size), got %d", v.SizeGiB))
	}
	if v.Type != "" && !slices.Contains(volumeTypes, v.Type) {
		add(problem("instance.root_volume.type", "%q is not one of %s", v.Type, strings.Join(volumeTypes, ", ")))
	}
	if v.IOPS != 0 && !slices.Contains(provisionedIOs, v.Type) {
		add(problem("instance.root_volume.iops", "needs instance.root_volume.type gp3, io1 or io2"))
	}
	if v.IOPS == 0 && (v.Type == "io1" || v.Type == "io2") {
		add(problem("instance.root_volume.iops", "%s volumes need their IOPS (EC2 refuses the launch without them): set 100 to 256000", v.Type))
	}
	if v.IOPS < 0 || v.IOPS > 256000 {
		add(problem("instance.root_volume.iops", "must be between 100 and 256000, got %d", v.IOPS))
	}
	if v.Throughput != 0 && v.Type != "gp3" {
		add(problem("instance.root_volume.throughput", "needs instance.root_volume.type gp3"))
	}
	if v.Throughput < 0 || v.Throughput > 2000 {
		add(problem("instance.root_volume.throughput", "must be between 125 and 2000 MiB/s, got %d", v.Throughput))
	}
	if v.KMSKeyID != "" && !v.Encrypted {
		add(problem("instance.root_volume.kms_key_id", "needs instance.root_volume.encrypted = true"))
	}
}

func validateTags(add func(error), tags map[string]string) {
	for k, v := range tags {
		if k == "" || len(k) > 128 || strings.HasPrefix(strings.ToLower(k), "aws:") || strings.HasPrefix(k, TagPrefix) {
			add(problem("instance.tags", "key %q must be 1-128 characters and not start with aws: or %s", k, TagPrefix))
		}
		if len(v) > 256 {
			add(problem("instance.tags", "value of %q is longer than 256 characters", k))
		}
	}
}

// listOf checks a list of ids: each must match re, none may repeat, and the list may
// be empty only when required is false.
func listOf(add func(error), field string, list []string, re *regexp.Regexp, what string, required bool) {
	if required && len(list) == 0 {
		add(problem(field, "must not be empty unless instance.launch_template supplies it"))
	}
	seen := map[string]bool{}
	for n, v := range list {
		if !re.MatchString(v) {
			add(problem(field, "entry %d %q is not %s", n, v, what))
		}
		if seen[v] {
			add(problem(field, "entry %d %q is listed twice", n, v))
		}
		seen[v] = true
	}
}
