package engine

import (
	"bytes"
	"io"
	"sync"
)

// Job containers (helper and build) are started once, by the first stage that needs
// them, and then each stage's script is exec'd into the running container. The docker
// executor instead starts a stopped container per stage with the script on stdin;
// that start (network, mounts, the runtime's init) costs a second or more per stage
// here, an exec a tenth of that, and the Kubernetes executor runs scripts the same
// way. What the docker executor's way gave for free is kept on purpose:
//   - the image's entrypoint still runs before any script, with its output in the
//     job log and its exit code the stage's when it ends without running the command;
//   - what the entrypoint exported (a ROS or conda setup, say) is recorded by the
//     keeper and sourced before every stage's script;
//   - processes a script leaves in the background die when its stage ends, as they
//     did when the container stopped: otherwise they hold the exec's output open and
//     the stage never ends.

// keeperReady is the line the keeper prints once the entrypoint has run and the
// container is ready for scripts.
const keeperReady = "ec2-executor: job container ready"

// entrypointEnv is where the keeper records the environment the image's entrypoint
// left, in the format of the image's own sh (`export -p`), which that sh sources back.
const entrypointEnv = "/tmp/.ec2-executor-entrypoint-env"

// keeperCmd is a job container's command: the image's entrypoint runs it, it runs
// setup, records the environment, says it is ready and waits with stdin held open
// by Docker (OpenStdin, nobody writing), falling back to sleep if stdin ends.
func keeperCmd(setup string) []string {
	return []string{"sh", "-c", setup + `
(export -p > ` + entrypointEnv + `) 2>/dev/null || :
echo '` + keeperReady + `'
while :; do read -r _ || sleep 2147483647; done
`}
}

// stageCmd is what each stage execs: the entrypoint's environment, then shell (which
// reads the script from stdin) in a child, then every process the script left behind
// is killed (kill -1 spares PID 1, the keeper, and the caller), and shell's exit code
// is the stage's.
func stageCmd(shell string) []string {
	return []string{"sh", "-c", `if [ -r ` + entrypointEnv + ` ]; then . ` + entrypointEnv + `; fi
(
` + shell + `)
rc=$?
kill -9 -1 2>/dev/null
exit $rc
`}
}

// readyWriter passes the container's start output on to w until the keeper's ready
// line, which it swallows, and then closes ready.
type readyWriter struct {
	w       io.Writer
	mu      sync.Mutex
	line    []byte
	ready   chan struct{}
	isReady bool
}

func newReadyWriter(w io.Writer) *readyWriter {
	return &readyWriter{w: w, ready: make(chan struct{})}
}

func (r *readyWriter) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(p)
	for len(p) > 0 && !r.isReady {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			r.line = append(r.line, p...)
			return n, nil
		}
		line := append(r.line, p[:i+1]...)
		r.line, p = nil, p[i+1:]
		if string(bytes.TrimRight(line, "\r\n")) == keeperReady {
			r.isReady = true
			close(r.ready)
			return n, nil
		}
		if _, err := r.w.Write(line); err != nil {
			return n, err
		}
	}
	return n, nil
}

// flush writes a last line the output ended without a newline on.
func (r *readyWriter) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.line) > 0 && !r.isReady {
		_, _ = r.w.Write(r.line)
		r.line = nil
	}
}
