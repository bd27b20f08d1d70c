package dockerauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker-credential-helpers/client"
)

// Helpers runs docker-credential-<name> executables from PATH on the manager, each
// call bounded by Timeout, speaking the helpers' protocol through the
// docker-credential-helpers client.
type Helpers struct {
	Timeout time.Duration
}

// errPathInHelper refuses helper names that would run something other than a
// docker-credential-* program from PATH.
var errPathInHelper = errors.New("helper names may not contain a path")

func checkHelperName(name string) error {
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." || strings.ContainsRune(name, 0) {
		return fmt.Errorf("credential helper %q: %w", name, errPathInHelper)
	}
	return nil
}

// Get asks helper for serverURL's credential.
func (h Helpers) Get(ctx context.Context, helper, serverURL string) (string, string, error) {
	if err := checkHelperName(helper); err != nil {
		return "", "", err
	}
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	c, err := client.Get(program(ctx, helper), serverURL)
	if err != nil {
		return "", "", helperError(ctx, helper, "get", err)
	}
	return c.Username, c.Secret, nil
}

// List asks helper for the registries it holds credentials for.
func (h Helpers) List(ctx context.Context, helper string) ([]string, error) {
	if err := checkHelperName(helper); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	m, err := client.List(program(ctx, helper))
	if err != nil {
		return nil, helperError(ctx, helper, "list", err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys, nil
}

// helperError names the helper and what it was asked; a helper's own message can
// only be its error text, never a secret (it prints secrets only on success).
func helperError(ctx context.Context, helper, op string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("credential helper docker-credential-%s %s: timed out", helper, op)
	}
	return fmt.Errorf("credential helper docker-credential-%s %s: %s", helper, op, firstLine(err.Error()))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func program(ctx context.Context, helper string) client.ProgramFunc {
	return func(args ...string) client.Program {
		cmd := exec.CommandContext(ctx, "docker-credential-"+helper, args...)
		// On timeout, kill the helper's whole process group and stop waiting for
		// pipes a grandchild may hold open.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = time.Second
		return &timedProgram{cmd: cmd}
	}
}

// timedProgram is client.Program over a command bound to a context.
type timedProgram struct{ cmd *exec.Cmd }

func (p *timedProgram) Input(in io.Reader)      { p.cmd.Stdin = in }
func (p *timedProgram) Output() ([]byte, error) { return p.cmd.Output() }
