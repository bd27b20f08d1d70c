package migrate

import (
	"fmt"
	"io"
)

// Outcome is what became of one docker+machine option.
type Outcome int

const (
	Mapped       Outcome = iota // carried over as it was
	Changed                     // carried over with a change, said why
	NotSupported                // dropped, said what to do instead
)

func (o Outcome) String() string {
	return [...]string{"mapped", "mapped with a change", "not supported"}[o]
}

// Line is one option's outcome.
type Line struct {
	Runner, Option string
	Outcome        Outcome
	Note           string
}

func (l Line) String() string {
	s := fmt.Sprintf("%s: %s: %s", l.Runner, l.Option, l.Outcome)
	if l.Note != "" {
		s += " (" + l.Note + ")"
	}
	return s
}

// Report collects the lines of a migration, and the names (without .toml) of the
// settings files it wrote that keep a warm pool, which name each one's pool unit.
type Report struct {
	Lines []Line
	Units []string
}

func (r *Report) add(runner, option string, o Outcome, note string) {
	r.Lines = append(r.Lines, Line{Runner: runner, Option: option, Outcome: o, Note: note})
}

// Print writes one line per option.
func (r *Report) Print(w io.Writer) {
	for _, l := range r.Lines {
		fmt.Fprintln(w, l)
	}
}

// PrintNext writes what to do with the files: where they go, and the lines that
// enable each runner's warm pool (the template unit reads
// /etc/ec2-executor/RUNNER.toml).
func (r *Report) PrintNext(w io.Writer, out, settingsDir string) {
	fmt.Fprintf(w, "\nNext: check every line above, then install %s/config.toml as gitlab-runner's config.toml and each %s/RUNNER.toml in %s (0640).\n", out, out, settingsDir)
	if settingsDir != "/etc/ec2-executor" {
		fmt.Fprintf(w, "The pool units read /etc/ec2-executor/RUNNER.toml: with --settings-dir %s, copy ec2-executor-pool@.service and change its --config.\n", settingsDir)
	}
	if len(r.Units) == 0 {
		return
	}
	fmt.Fprintln(w, "These runners' settings keep a warm pool (pool.idle_count, pool.stopped_count, pool.scale_factor, [[pool.schedule]]); start each one's:")
	for _, u := range r.Units {
		fmt.Fprintf(w, "  systemctl enable --now ec2-executor-pool@%s.service\n", u)
	}
}
