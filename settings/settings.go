package settings

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// DefaultPath is where the driver looks for its settings when neither --config nor
// EC2_EXECUTOR_CONFIG names a file.
const DefaultPath = "/etc/ec2-executor/config.toml"

// Settings is the whole driver settings file. Every field is documented in
// docs/settings.md; a test keeps that reference in step with these toml tags.
type Settings struct {
	// ManagerID names this manager in instance tags so the reaper only touches its own
	// workers. Default: the host name.
	ManagerID string `toml:"manager_id"`
	// StateDir holds one 0600 state file per job between the stage processes.
	StateDir string   `toml:"state_dir"`
	AWS      AWS      `toml:"aws"`
	Instance Instance `toml:"instance"`
	SSH      SSH      `toml:"ssh"`
	Job      Job      `toml:"job"`
}

// AWS selects the region and, for tests or VPC endpoints, an endpoint override.
type AWS struct {
	Region   string `toml:"region"`
	Endpoint string `toml:"endpoint"`
}

// Instance says how each worker is launched.
type Instance struct {
	AMI                string            `toml:"ami"`
	Type               string            `toml:"type"`
	SubnetID           string            `toml:"subnet_id"`
	SecurityGroupIDs   []string          `toml:"security_group_ids"`
	IAMInstanceProfile string            `toml:"iam_instance_profile"`
	MetadataHopLimit   int               `toml:"metadata_hop_limit"`
	Tags               map[string]string `toml:"tags"`
	LaunchTimeout      Duration          `toml:"launch_timeout"`
	PollInterval       Duration          `toml:"poll_interval"`
}

// SSH says how the driver reaches a worker's Docker Engine.
type SSH struct {
	User           string   `toml:"user"`
	Port           int      `toml:"port"`
	Address        string   `toml:"address"`
	ConnectTimeout Duration `toml:"connect_timeout"`
	RetryInterval  Duration `toml:"retry_interval"`
}

// Job holds what the job's containers see.
type Job struct {
	DefaultImage string `toml:"default_image"`
	HelperImage  string `toml:"helper_image"`
	BuildsDir    string `toml:"builds_dir"`
	CacheDir     string `toml:"cache_dir"`
}

// Address values for SSH.Address.
const (
	AddressPrivate = "private"
	AddressPublic  = "public"
)

// Default returns the settings every file starts from.
func Default() Settings {
	host, _ := os.Hostname()
	return Settings{
		ManagerID: host,
		StateDir:  "/var/lib/ec2-executor",
		AWS:       AWS{Region: "us-east-1"},
		Instance: Instance{
			Type:             "t3.medium",
			MetadataHopLimit: 1,
			LaunchTimeout:    Duration{5 * time.Minute},
			PollInterval:     Duration{2 * time.Second},
		},
		SSH: SSH{
			User:           "ec2-executor",
			Port:           22,
			Address:        AddressPrivate,
			ConnectTimeout: Duration{5 * time.Minute},
			RetryInterval:  Duration{2 * time.Second},
		},
		Job: Job{
			DefaultImage: "alpine:3.20",
			HelperImage:  "registry.gitlab.com/gitlab-org/gitlab-runner/gitlab-runner-helper:${CI_RUNNER_ARCH}-${CI_RUNNER_VERSION}",
			BuildsDir:    "/builds",
			CacheDir:     "/cache",
		},
	}
}

// Load reads a settings file strictly over the defaults. It does not validate:
// call Validate for that, so `validate` can list decode and value problems apart.
func Load(path string) (Settings, error) {
	s := Default()
	data, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("reading settings file: %w", err)
	}
	md, err := toml.Decode(string(data), &s)
	if err != nil {
		return s, fmt.Errorf("settings file %s: %w", path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, 0, len(undecoded))
		for _, k := range undecoded {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		return s, fmt.Errorf("settings file %s: unknown key(s): %s", path, strings.Join(keys, ", "))
	}
	return s, nil
}

// LoadValid loads and validates, the way every stage needs its settings.
func LoadValid(path string) (Settings, error) {
	s, err := Load(path)
	if err != nil {
		return s, err
	}
	if err := s.Validate(); err != nil {
		return s, fmt.Errorf("settings file %s is invalid:\n%w", path, err)
	}
	return s, nil
}

// SSHPublic reports whether the driver dials the worker's public address.
func (s Settings) SSHPublic() bool { return s.SSH.Address == AddressPublic }

// problem names a field and what is wrong with it.
func problem(field, format string, args ...any) error {
	return fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...))
}

// joinSorted is errors.Join with a stable order, so output and tests are deterministic.
func joinSorted(errs []error) error {
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}
