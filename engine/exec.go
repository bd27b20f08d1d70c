package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
)

// Exec runs command on the worker as the SSH user with stdin, and returns its stdout.
// It is for short helper programs (docker-credential-ecr-login); the job's own
// scripts run in containers, never here. stderr is kept out of errors, which only
// say how the command ended: helpers print secrets only on success.
func (w *Worker) Exec(ctx context.Context, command string, stdin io.Reader) ([]byte, error) {
	if w.ssh == nil {
		return nil, errNoSSH
	}
	s, err := w.ssh.NewSession()
	if err != nil {
		return nil, fmt.Errorf("opening an SSH session: %w", err)
	}
	defer s.Close()
	var out bytes.Buffer
	s.Stdin, s.Stdout = stdin, &out
	done := make(chan error, 1)
	go func() { done <- s.Run(command) }()
	select {
	case err := <-done:
		if err != nil {
			return out.Bytes(), fmt.Errorf("running %s on the worker: %w", firstWord(command), err)
		}
		return out.Bytes(), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("running %s on the worker: %w", firstWord(command), ctx.Err())
	}
}

func firstWord(s string) string {
	word, _, _ := strings.Cut(s, " ")
	return word
}
