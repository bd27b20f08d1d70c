package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ec2-executor/ec2-executor/cloudinit"
	"github.com/ec2-executor/ec2-executor/dockerauth"
)

// netnsPrefix names the network namespaces of workers with their own dockerd.
const netnsPrefix = "ec2x-"

// privateDocker is a worker's own dockerd, used when its user data carries a
// daemon.json fragment: it runs in a network namespace with only lo (nothing can
// leave it), with the daemon.json the worker's own merge script produced from an
// "AMI" file, and sees the stack's images only through a pull-through mirror started
// inside the namespace. The worker's sshd exposes it at /var/run/docker.sock in a
// private mount namespace, so the driver's code path is the real one.
type privateDocker struct {
	ns, run    string
	dir        string
	ecr        []nsRegistry
	sock       string
	daemonJSON []byte
	procs      []*proc
	dockerd    *proc
	orphans    []int // what a killed dockerd left running
}

// amiDaemonJSON is what the "AMI" already has in /etc/docker/daemon.json; the
// worker's merge must keep it.
const amiDaemonJSON = `{"hosts": ["unix://%[1]s/docker.sock"], "exec-root": "%[1]s/exec", "pidfile": "%[1]s/docker.pid",
 "data-root": %[2]q, "iptables": false, "ip-masq": false, "log-level": "warn"}`

func (b *Booter) startPrivateDocker(ctx context.Context, dir, id string, wc workerConfig) (*privateDocker, error) {
	short := id[len(id)-8:]
	// Unix socket paths are short: the sockets live under /run, the data in dir.
	pd := &privateDocker{ns: netnsPrefix + short, run: "/run/" + netnsPrefix + short, dir: dir}
	pd.sock = pd.run + "/docker.sock"
	if err := pd.setup(); err != nil {
		return pd, err
	}
	if err := b.startNSRegistries(ctx, dir, pd); err != nil {
		return pd, err
	}
	merged, err := mergeDaemonJSON(dir, pd, wc)
	if err != nil {
		return pd, err
	}
	pd.daemonJSON = merged
	wrapper, err := pd.ecrRegistries(dir, b.s.Dir, wc)
	if err != nil {
		return pd, err
	}
	for _, r := range pd.ecr {
		if err := b.startNSRegistry(ctx, pd, r.name, r.cfg, r.addr); err != nil {
			return pd, err
		}
	}
	p, err := b.s.startWrapped("dockerd-"+id, nil, append(pd.enter(), wrapper...), append([]string{"dockerd", "--config-file", filepath.Join(dir, "daemon.json")}, b.s.runtimeFlags()...)...)
	if err != nil {
		return pd, err
	}
	pd.procs, pd.dockerd = append(pd.procs, p), p
	return pd, waitFor(ctx, p, 60*time.Second, "the worker's dockerd", func() bool { return dockerPings(ctx, pd.sock) })
}

func (pd *privateDocker) setup() error {
	for _, args := range [][]string{{"ip", "netns", "add", pd.ns}, {"ip", "-n", pd.ns, "link", "set", "lo", "up"}} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %s", strings.Join(args, " "), out)
		}
	}
	return os.MkdirAll(pd.run, 0o700)
}

func (pd *privateDocker) enter() []string { return []string{"nsenter", "--net=/run/netns/" + pd.ns} }

// startNSRegistries starts, inside the namespace, the stack's htpasswd registry on
// 127.0.0.1:5000 (the helper image comes from there), an unauthenticated view of its
// storage on 127.0.0.1:5002 and a pull-through mirror of that on 127.0.0.1:5001 (a proxy registry panics if its upstream is not up: wait first).
func (b *Booter) startNSRegistries(ctx context.Context, dir string, pd *privateDocker) error {
	data, htpasswd := filepath.Join(b.s.Dir, "registry", "data"), filepath.Join(b.s.Dir, "registry", "htpasswd")
	open := registryYAML(data, OpenRegistryAddr, "")
	mirror := registryYAML(filepath.Join(dir, "mirror"), NSMirrorAddr, "") + "proxy:\n  remoteurl: http://" + OpenRegistryAddr + "\n"
	authed := registryYAML(data, RegistryAddr, htpasswd)
	for _, r := range []nsRegistry{{"registry", authed, RegistryAddr}, {"upstream", open, OpenRegistryAddr}, {"mirror", mirror, NSMirrorAddr}} {
		if err := b.startNSRegistry(ctx, pd, r.name, r.cfg, r.addr); err != nil {
			return err
		}
	}
	return nil
}

func (b *Booter) startNSRegistry(ctx context.Context, pd *privateDocker, name, cfg, addr string) error {
	path := filepath.Join(pd.dir, name+".yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return err
	}
	p, err := b.s.startWrapped(pd.ns+"-"+name, nil, pd.enter(), "docker-registry", "serve", path)
	if err != nil {
		return err
	}
	pd.procs = append(pd.procs, p)
	// Inside the namespace the port cannot be dialled from here: the log says when it listens.
	log := filepath.Join(b.s.Dir, "logs", pd.ns+"-"+name+".log")
	up := func() bool { b, _ := os.ReadFile(log); return strings.Contains(string(b), "listening on "+addr) }
	return waitFor(ctx, p, 30*time.Second, name+" in "+pd.ns, up)
}

// nsRegistry is a registry to start inside a worker's namespace.
type nsRegistry struct{ name, cfg, addr string }

// ecrRegistries makes every ECR host the worker's daemon.json lists as an insecure
// registry reach the stack's htpasswd registry (whose htpasswd holds moto's token):
// the name resolves to 127.0.0.1 only in the worker dockerd's own mount namespace (a
// private /etc/hosts), and a registry listens on 127.0.0.1:80 in its network
// namespace. Real DNS and this machine's /etc/hosts are never involved. It returns
// the wrapper that gives dockerd that /etc/hosts.
func (pd *privateDocker) ecrRegistries(dir, stackDir string, wc workerConfig) ([]string, error) {
	var frag struct {
		Insecure []string `json:"insecure-registries"`
	}
	_ = json.Unmarshal([]byte(wc.Files[cloudinit.DaemonFragmentPath]), &frag)
	var hosts []string
	for _, h := range frag.Insecure {
		if _, _, ok := dockerauth.ECRRegistry(h); ok {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		return nil, nil
	}
	// Docker tries https://host (443, nothing listens) and then, for an insecure
	// registry, http://host on port 80.
	addr := "127.0.0.1:80"
	pd.ecr = []nsRegistry{{"ecr", registryYAML(filepath.Join(stackDir, "registry", "data"), addr, filepath.Join(stackDir, "registry", "htpasswd")), addr}}
	etcHosts := filepath.Join(dir, "hosts")
	if err := os.WriteFile(etcHosts, []byte("127.0.0.1 localhost "+strings.Join(hosts, " ")+"\n"), 0o644); err != nil {
		return nil, err
	}
	return []string{"unshare", "--mount", "--propagation", "private", "sh", "-c", `mount --bind "$0" /etc/hosts && exec "$@"`, etcHosts}, nil
}

// mergeDaemonJSON runs the merge script from the user data, as the worker's runcmd
// does, over the "AMI's" daemon.json.
func mergeDaemonJSON(dir string, pd *privateDocker, wc workerConfig) ([]byte, error) {
	target := filepath.Join(dir, "daemon.json")
	base := fmt.Sprintf(amiDaemonJSON, pd.run, filepath.Join(dir, "docker-data"))
	fragment := filepath.Join(dir, "daemon-fragment.json")
	if err := os.WriteFile(target, []byte(base), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(fragment, []byte(wc.Files[cloudinit.DaemonFragmentPath]), 0o644); err != nil {
		return nil, err
	}
	script := wc.Files[cloudinit.MergeJSONPath]
	if script == "" {
		return nil, fmt.Errorf("user data writes %s but not %s", cloudinit.DaemonFragmentPath, cloudinit.MergeJSONPath)
	}
	if out, err := exec.Command("python3", "-c", script, fragment, target, "0644").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("the worker's merge-json failed: %v: %s", err, out)
	}
	return os.ReadFile(target)
}

// sshdWrapper runs the worker's sshd in a private mount namespace where the worker's
// socket is bind-mounted over /var/run/docker.sock; the host's stays untouched.
func (pd *privateDocker) sshdWrapper() []string {
	return []string{"unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount --bind "$0" /var/run/docker.sock && exec "$@"`, pd.sock}
}

// stop stops the worker's processes (sshd is stopped by the caller) and namespace.
func (pd *privateDocker) stop() {
	for _, pid := range pd.orphans {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	killShims(pd.run + "/")
	for i := len(pd.procs) - 1; i >= 0; i-- {
		pd.procs[i].stop(15 * time.Second)
	}
	// A dockerd that was killed (StopDockerd) could not unmount its containers'
	// overlay and network-namespace mounts: take them down with the worker.
	unmountUnder(pd.dir, pd.run)
	_ = exec.Command("ip", "netns", "del", pd.ns).Run()
	_ = os.RemoveAll(pd.run)
}

// unmountUnder detaches every mount below the directories, deepest first.
func unmountUnder(dirs ...string) {
	for _, m := range slices.Backward(MountsUnder(dirs...)) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			logf("stack: unmounting %s: %v", m, err)
		}
	}
}

// MountsUnder lists this machine's mount points below any of the directories, in
// the order they were mounted.
func MountsUnder(dirs ...string) []string {
	var out []string
	for _, m := range Mounts() {
		for _, d := range dirs {
			if d != "" && strings.HasPrefix(m, strings.TrimSuffix(d, "/")+"/") {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// NamespacePrefixes are the prefixes of the network namespaces the stack makes.
var NamespacePrefixes = []string{netnsPrefix, realNetnsPrefix}

// Mounts lists the mount points of this process's mount namespace, in mount order.
func Mounts() []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			out = append(out, unescapeMount(f[4]))
		}
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeStaleNamespaces deletes worker namespaces an earlier stack left behind.
func removeStaleNamespaces() {
	killShims("/run/" + netnsPrefix) // a stale worker's containers outlive its namespace
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		if name, _, _ := strings.Cut(line, " "); strings.HasPrefix(name, netnsPrefix) {
			logf("stack: removing network namespace %s left by an earlier stack", name)
			_ = exec.Command("ip", "netns", "del", name).Run()
			_ = os.RemoveAll("/run/" + name)
		}
	}
}

// killShims kills the containerd shims whose containerd lives under runPrefix (one
// worker's, or every worker's), and the container processes under them. A shim daemonizes, so it is no descendant of the dockerd or
// containerd that started it: a killed dockerd leaves it running (with the job's
// processes) unless it is found by the containerd address on its command line.
func killShims(runPrefix string) {
	for _, pid := range pidsRunning(func(cmdline []byte) bool { return bytes.Contains(cmdline, []byte("-address\x00"+runPrefix)) }) {
		killTree(pid)
	}
}
