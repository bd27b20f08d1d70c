package main

import (
	"os"
	"os/exec"
	"syscall"
)

// startHolder returns how prepare starts a job's holder: this binary's `hold`, with
// the same settings file, in a session of its own (the runner signals the stage's
// process group) and with no stdin, stdout or stderr (the runner waits for the
// stage's pipes to close, runner-protocol.md §1.3).
func startHolder(config *string) func(key string) error {
	return func(key string) error {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		cmd := exec.Command(self, "--config", *config, "hold", key)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return err
		}
		return cmd.Process.Release()
	}
}
