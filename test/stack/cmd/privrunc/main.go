// Command privrunc is the stack's dockerds' OCI runtime: runc, less the capabilities
// this machine cannot grant. Its capability bounding set lacks CAP_SYS_RESOURCE (and
// a worker that boots for real under systemd-nspawn lacks more), so runc fails every
// `--privileged` container here with "unable to apply caps: operation not
// permitted", where an EC2 worker's Docker starts it. privrunc removes the
// capabilities outside its own bounding set from the container's (create, run) or
// the exec'd process's (exec) capability sets, and nothing else, then runs runc with
// the same arguments: a privileged container keeps everything else Docker gives it
// (every other capability, devices, writable /sys and cgroups, no seccomp or
// AppArmor), as on a worker. It plays no part in the product: the driver asks Docker
// for exactly what the docker executor asks for.
//
//	dockerd --add-runtime ec2x-runc=/path/privrunc --default-runtime ec2x-runc
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// runc is Debian's runc, what the stack's dockerds would run without the wrapper.
const runc = "/usr/sbin/runc"

func main() {
	bounding, err := boundingSet()
	if err == nil {
		err = rewrite(os.Args[1:], bounding)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "privrunc:", err)
		os.Exit(1)
	}
	err = syscall.Exec(runc, append([]string{"runc"}, os.Args[1:]...), os.Environ())
	fmt.Fprintln(os.Stderr, "privrunc: exec runc:", err)
	os.Exit(1)
}

// boundingSet is this process's capability bounding set, from /proc/self/status.
func boundingSet() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, fmt.Errorf("no CapBnd in /proc/self/status")
}

// capNumbers are the Linux capabilities by number (linux/capability.h).
var capNumbers = []string{"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
	"SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
	"SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
	"MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"}

// grantable reports whether the capability named c is in the bounding set (an
// unknown name is left to runc).
func grantable(c string, bounding uint64) bool {
	for n, name := range capNumbers {
		if "CAP_"+name == c {
			return bounding&(1<<n) != 0
		}
	}
	return true
}

// rewrite edits the spec runc is about to read: the bundle's config.json for
// create and run, the --process file for exec.
func rewrite(args []string, bounding uint64) error {
	cmd, i := command(args)
	switch cmd {
	case "create", "run":
		bundle := flag(args[i:], "bundle", "b")
		if bundle == "" {
			bundle = "."
		}
		return edit(filepath.Join(bundle, "config.json"), func(spec map[string]any) {
			if p, ok := spec["process"].(map[string]any); ok {
				dropCaps(p, bounding)
			}
		})
	case "exec":
		if p := flag(args[i:], "process", "p"); p != "" {
			return edit(p, func(process map[string]any) { dropCaps(process, bounding) })
		}
	}
	return nil
}

// command finds runc's subcommand after its global flags (--root X, --log X, ...).
func command(args []string) (string, int) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case !strings.HasPrefix(a, "-"):
			return a, i + 1
		case !strings.Contains(a, "=") && globalWithValue[strings.TrimLeft(a, "-")]:
			i++
		}
	}
	return "", len(args)
}

var globalWithValue = map[string]bool{"root": true, "log": true, "log-format": true, "criu": true, "rootless": true}

// flag is the value of --name, -short, --name=v or -short=v in args.
func flag(args []string, name, short string) string {
	for i, a := range args {
		for _, f := range []string{"--" + name, "-" + short} {
			if a == f && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, f+"="); ok {
				return v
			}
		}
	}
	return ""
}

func edit(path string, change func(map[string]any)) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	change(doc)
	if b, err = json.Marshal(doc); err != nil {
		return err
	}
	return os.WriteFile(path, b, info.Mode().Perm())
}

// dropCaps removes the capabilities outside the bounding set from every set of a
// process spec.
func dropCaps(process map[string]any, bounding uint64) {
	caps, ok := process["capabilities"].(map[string]any)
	if !ok {
		return
	}
	for set, list := range caps {
		l, ok := list.([]any)
		if !ok {
			continue
		}
		kept := l[:0]
		for _, c := range l {
			if name, _ := c.(string); grantable(name, bounding) {
				kept = append(kept, c)
			}
		}
		caps[set] = kept
	}
}
