package engine

import "syscall"

// umask sets the process's file mode creation mask and returns the old one: a Unix
// socket gets its mode at bind time, and a holder's must never be open to others.
func umask(m int) int { return syscall.Umask(m) }
