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

// Report collects the lines of a migration.
type Report struct{ Lines []Line }

func (r *Report) add(runner, option string, o Outcome, note string) {
	r.Lines = append(r.Lines, Line{Runner: runner, Option: option, Outcome: o, Note: note})
}

// Print writes one line per option.
func (r *Report) Print(w io.Writer) {
	for _, l := range r.Lines {
		fmt.Fprintln(w, l)
	}
}
