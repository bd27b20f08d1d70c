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
	StateDir  string    `toml:"state_dir"`
	AWS       AWS       `toml:"aws"`
	Instance  Instance  `toml:"instance"`
	Overrides Overrides `toml:"overrides"`
	Worker    Worker    `toml:"worker"`
	Reap      Reap      `toml:"reap"`
	SSH       SSH       `toml:"ssh"`
	Job       Job       `toml:"job"`
	Docker    Docker    `toml:"docker"`
	Registry  Registry  `toml:"registry"`
	Pool      Pool      `toml:"pool"`
}

// AWS selects the region and, for tests or VPC endpoints, an endpoint override.
type AWS struct {
	Region   string `toml:"region"`
	Endpoint string `toml:"endpoint"`
}

// Reap says when orphaned workers are terminated.
type Reap struct {
	// GracePeriod is how old a worker without job state must be before it is reaped:
	// it covers the moment between RunInstances and saving the instance id.
	GracePeriod Duration `toml:"grace_period"`
	// FromCleanup runs the reaper at the end of cleanup, at most once per Interval.
	FromCleanup bool     `toml:"from_cleanup"`
	Interval    Duration `toml:"interval"`
	// ManagerTimeout is how old another manager's heartbeat may be before `reap
	// --all-managers` and every pool terminate that manager's workers.
	// HeartbeatInterval is how often a pool renews its own.
	ManagerTimeout    Duration `toml:"manager_timeout"`
	HeartbeatInterval Duration `toml:"heartbeat_interval"`
}

// SSH says how the driver reaches a worker's Docker Engine.
type SSH struct {
	User           string   `toml:"user"`
	Port           int      `toml:"port"`
	Address        string   `toml:"address"`
	ConnectTimeout Duration `toml:"connect_timeout"`
	RetryInterval  Duration `toml:"retry_interval"`
	// RunConnectTimeout bounds reaching, in a run stage, a worker prepare reached: one
	// that does not answer within it is gone, and waiting longer only delays the
	// system failure. CleanupConnectTimeout bounds cleanup's attempt to remove the
	// job's containers before it releases the worker either way.
	RunConnectTimeout     Duration `toml:"run_connect_timeout"`
	CleanupConnectTimeout Duration `toml:"cleanup_connect_timeout"`
	// ReconnectFirstTry is how long a later stage tries before it asks EC2 whether
	// the worker still exists.
	ReconnectFirstTry Duration `toml:"reconnect_first_try"`
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

// HostPlaceholder in manager_id stands for this host's name, read when the settings
// are loaded: one settings file can then serve every manager host, each with an id
// of its own.
const HostPlaceholder = "{host}"

// Default returns the settings every file starts from.
func Default() Settings {
	host, _ := os.Hostname()
	return Settings{
		ManagerID: host,
		StateDir:  "/var/lib/ec2-executor",
		AWS:       AWS{Region: "us-east-1"},
		Instance: Instance{
			Market:           MarketOnDemand,
			MetadataHopLimit: 1,
			MaxLifetime:      Duration{6 * time.Hour},
			LaunchTimeout:    Duration{5 * time.Minute},
			PollInterval:     Duration{2 * time.Second},
			// Three reclaims in half an hour is a zone out of spot capacity for
			// that type; an hour on demand costs less than three lost jobs.
			SpotInterruptionsLimit:  3,
			SpotInterruptionsWindow: Duration{30 * time.Minute},
			SpotCooldown:            Duration{time.Hour},
		},
		Worker: Worker{ECRCredentialHelper: true},
		Reap: Reap{GracePeriod: Duration{10 * time.Minute}, FromCleanup: true, Interval: Duration{5 * time.Minute},
			ManagerTimeout: Duration{10 * time.Minute}, HeartbeatInterval: Duration{time.Minute}},
		SSH: SSH{
			User:                  "ec2-executor",
			Port:                  22,
			Address:               AddressPrivate,
			ConnectTimeout:        Duration{5 * time.Minute},
			RetryInterval:         Duration{2 * time.Second},
			RunConnectTimeout:     Duration{30 * time.Second},
			CleanupConnectTimeout: Duration{15 * time.Second},
			ReconnectFirstTry:     Duration{5 * time.Second},
		},
		Docker:   defaultDocker(),
		Registry: defaultRegistry(),
		Pool:     defaultPool(),
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
// Every unknown key and every value of the wrong type is reported, in one error,
// with a suggestion for a misspelt key.
func Load(path string) (Settings, error) {
	s := Default()
	data, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("reading settings file: %w", err)
	}
	md, err := toml.Decode(string(data), &s)
	var problems []string
	if err != nil {
		if problems, s = decodeProblems(string(data)); problems == nil { // TOML syntax: one is all it can tell
			return s, fmt.Errorf("settings file %s: %w", path, err)
		}
	} else {
		problems = unknownKeys(md.Undecoded())
	}
	if len(problems) > 0 {
		if err := runnerConfig(path, string(data)); err != nil {
			return s, err
		}
		return s, &DecodeError{Path: path, Problems: problems}
	}
	if strings.Contains(s.ManagerID, HostPlaceholder) {
		host, _ := os.Hostname()
		s.ManagerID = strings.ReplaceAll(s.ManagerID, HostPlaceholder, host)
	}
	return s, nil
}

// DecodeError lists every key of a settings file that could not be read. Load
// returns it with the settings read from every other key, so their values can be
// validated in the same pass.
type DecodeError struct {
	Path     string
	Problems []string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("settings file %s:\n  %s", e.Path, strings.Join(e.Problems, "\n  "))
}

// runnerConfig refuses a gitlab-runner config.toml with one line that points at
// migrate, instead of a list of every key it has that the settings do not. Load asks
// only of a file that has problems, so a good one is decoded once.
func runnerConfig(path, doc string) error {
	var top map[string]any
	if _, err := toml.Decode(doc, &top); err != nil {
		return nil
	}
	if _, ok := top["runners"].([]map[string]any); ok {
		return fmt.Errorf("%s is a gitlab-runner config.toml ([[runners]]), not ec2-executor settings: `ec2-executor migrate --runner-config %s --out DIR` writes settings from its docker+machine runners", path, path)
	}
	return nil
}

// freeForm reports whether key lies inside a table whose keys are not ours to check
// (Docker's daemon.json options are passed through as written).
func freeForm(key string) bool {
	return strings.HasPrefix(key, "worker.daemon_options.")
}

// leaves drops unknown tables whose unknown keys are listed too, so "[paint] colour"
// is reported once as paint.colour. keys must be sorted.
func leaves(keys []string) []string {
	out := keys[:0]
	for i, k := range keys {
		if i+1 < len(keys) && strings.HasPrefix(keys[i+1], k+".") {
			continue
		}
		out = append(out, k)
	}
	return out
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
