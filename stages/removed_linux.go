package stages

import (
	"context"
	"os"

	"golang.org/x/sys/unix"
)

// stateRemoved closes its channel once path is removed (cleanup removing the job's
// state) or ctx ends. It waits on inotify, watching the file itself, so a held job
// makes no system call while its state stays and is woken by no other job's; a save
// (statefile replaces the file) wakes it once to watch the new one. Where inotify
// is not available it looks every second.
func stateRemoved(ctx context.Context, path string) <-chan struct{} {
	done := make(chan struct{})
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		go pollRemoved(ctx, path, done)
		return done
	}
	f := os.NewFile(uintptr(fd), "inotify") // non-blocking: reads wait in Go's poller, and Close ends them
	go func() {
		<-ctx.Done()
		f.Close()
	}()
	go func() {
		defer close(done)
		const mask = unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ATTRIB
		buf := make([]byte, 16*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
		for {
			if _, err := unix.InotifyAddWatch(fd, path, mask); err != nil {
				return // gone (or the watch closed)
			}
			if _, err := f.Read(buf); err != nil {
				return // ctx ended
			}
			if _, err := os.Stat(path); err != nil {
				return
			}
		}
	}()
	return done
}
