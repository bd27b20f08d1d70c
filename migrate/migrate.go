package migrate

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/ec2-executor/ec2-executor/settings"
)

// Options say what to migrate and where to.
type Options struct {
	RunnerConfig string // gitlab-runner's config.toml, read only
	Runner       string // only this [[runners]] name; empty for every docker+machine one
	Out          string // directory for config.toml and one <runner>.toml per runner
	// SettingsDir is where the settings files will live on the manager: the runner
	// config's --config arguments point there.
	SettingsDir string
	// Binary is the path of ec2-executor on the manager.
	Binary  string
	Resolve GroupResolver
	// Force replaces files already in Out; without it migrate writes nothing then.
	Force bool
}

type migration struct {
	report  Report
	resolve GroupResolver
}

// Run migrates and returns what became of every option. It writes nothing when no
// runner qualifies.
func Run(ctx context.Context, o Options) (*Report, error) {
	var doc map[string]any
	if _, err := toml.DecodeFile(o.RunnerConfig, &doc); err != nil {
		return nil, fmt.Errorf("reading the runner config %s: %w", o.RunnerConfig, err)
	}
	runners, _ := doc["runners"].([]map[string]any)
	m := &migration{resolve: o.Resolve}
	files := map[string][]byte{}
	var chosen []int
	for i, raw := range runners {
		if v := viewOf(raw); (o.Runner == "" || v.name == o.Runner) && v.isAmazonMachine() {
			chosen = append(chosen, i)
		}
	}
	taken := map[string]bool{"config": true}
	for _, i := range chosen {
		v := viewOf(runners[i])
		base := m.fileFor(v.name, taken)
		s := m.settings(ctx, v, identity(base, len(chosen) > 1))
		if s.Pool.Configured() {
			m.report.Units = append(m.report.Units, base)
		}
		body, err := encodeSettings(v.name, s)
		if err != nil {
			return nil, err
		}
		files[base+".toml"] = body
		runners[i] = customRunner(runners[i], o.Binary, filepath.Join(o.SettingsDir, base+".toml"))
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s has no runner with executor \"docker+machine\" and MachineDriver \"amazonec2\"%s", o.RunnerConfig, named(o.Runner))
	}
	var buf bytes.Buffer
	buf.WriteString("# gitlab-runner config written by `ec2-executor migrate` from " + o.RunnerConfig + ".\n")
	if err := toml.NewEncoder(&buf).Encode(doc); err != nil {
		return nil, err
	}
	files["config.toml"] = buf.Bytes()
	return &m.report, write(o.Out, files, o.Force)
}

// fileFor is the runner's settings file name (without .toml): its name as a slug,
// with a suffix when another runner's slug is the same ("CI Runner" and "ci-runner").
func (m *migration) fileFor(runner string, taken map[string]bool) string {
	base := slug(runner)
	name := base
	for n := 2; taken[name]; n++ {
		name = fmt.Sprintf("%s-%d", base, n)
	}
	taken[name] = true
	if name != base {
		m.report.add(runner, "name", Changed, fmt.Sprintf("its settings are %s.toml: %s.toml is another runner's whose name differs only in case or punctuation", name, base))
	}
	return name
}

// runnerIdentity is what keeps one runner's workers apart from another's.
type runnerIdentity struct {
	managerID, stateDir string
}

// identity keeps the host-derived manager id ({host}) for a lone runner, as the
// default does; several runners on one manager each get their own id, since a
// manager's reaper ends the workers whose job state it does not hold, and two
// managers sharing one id would end each other's. Every runner gets its own state
// directory, the one the template unit ec2-executor-pool@RUNNER gives its pool.
func identity(base string, several bool) runnerIdentity {
	id := runnerIdentity{managerID: settings.HostPlaceholder, stateDir: "/var/lib/ec2-executor/" + base}
	if several {
		id.managerID += "-" + base
	}
	return id
}

func named(runner string) string {
	if runner == "" {
		return ""
	}
	return " named " + runner
}

// settings builds one runner's ec2-executor settings.
func (m *migration) settings(ctx context.Context, v runnerView, id runnerIdentity) settings.Settings {
	s := settings.Default()
	s.ManagerID = id.managerID
	s.StateDir = id.stateDir
	note := "manager_id = \"" + id.managerID + "\": " + settings.HostPlaceholder + " is this host's name when the settings are read, unique per manager host"
	if id.managerID != settings.HostPlaceholder {
		note += " and per runner"
	}
	note += "; state_dir = \"" + id.stateDir + "\", the pool unit ec2-executor-pool@" + path.Base(id.stateDir) + "'s"
	m.report.add(v.name, "(manager id)", Changed, note)
	s.Instance.AMIParameter = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64" // replaced by amazonec2-ami
	s.Instance.Types = []string{"t3.medium"}
	m.machineOptions(ctx, &s, v)
	m.docker(&s, v)
	m.machine(&s, v)
	return s
}

func encodeSettings(runner string, s settings.Settings) ([]byte, error) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# ec2-executor settings for runner %q, written by `ec2-executor migrate`.\n", runner)
	buf.WriteString("# Check every line it printed; `ec2-executor validate --config <this file>` checks the rest.\n")
	if err := toml.NewEncoder(&buf).Encode(s); err != nil {
		return nil, fmt.Errorf("writing settings for runner %s: %w", runner, err)
	}
	return buf.Bytes(), nil
}

// customRunner is the runner entry with the custom executor calling ec2-executor in
// place of docker+machine; every other key is kept as it was.
func customRunner(raw map[string]any, binary, settingsPath string) map[string]any {
	out := map[string]any{}
	for k, v := range raw {
		if k != "machine" && k != "docker" {
			out[k] = v
		}
	}
	out["executor"] = "custom"
	if out["builds_dir"] == nil {
		out["builds_dir"] = "/builds"
	}
	if out["cache_dir"] == nil {
		out["cache_dir"] = "/cache"
	}
	custom := map[string]any{"graceful_kill_timeout": int64(30)}
	for _, stage := range []string{"config", "prepare", "run", "cleanup"} {
		custom[stage+"_exec"] = binary
		custom[stage+"_args"] = []string{"--config", settingsPath, stage}
	}
	out["custom"] = custom
	return out
}

var nonSlug = regexp.MustCompile(`[^a-z0-9-]+`)

// slug makes a runner name a file name and a manager id.
func slug(name string) string {
	s := strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if s == "" {
		return "runner"
	}
	return s
}

// write puts the files in dir, 0600 (a runner config holds its token). Without
// force it writes nothing when any of them is there already.
func write(dir string, files map[string][]byte, force bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if !force {
		var there []string
		for name := range files {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				there = append(there, name)
			}
		}
		if len(there) > 0 {
			sort.Strings(there)
			return fmt.Errorf("%s already holds %s: migrate never overwrites a file (--force replaces them)", dir, strings.Join(there, ", "))
		}
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o600); err != nil {
			return err
		}
	}
	return nil
}
