package stack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// RealRootCache is where the really booting workers' Debian 12 root filesystem is
// built once and kept between runs (about 330 MB, built in about 75 s from Debian's
// repository).
const RealRootCache = "/var/cache/ec2-executor-stack"

// realRootName names the cached build; change it when what the build does changes.
const realRootName = "debian12-cloud-v1"

// realRootSuite is the Debian release the workers boot.
const realRootSuite = "bookworm"

// realRootHosts are the repository hosts a real worker's apt may reach through the
// stack's proxy: this machine's, and the ones the cached root filesystem lists.
func realRootHosts() []string {
	var sources []aptSource
	if host, err := hostAptSources(aptSourcesRoot, realRootSuite); err == nil {
		sources = append(sources, host...)
	}
	if cached, err := hostAptSources(filepath.Join(RealRootCache, realRootName, "etc", "apt"), realRootSuite); err == nil {
		sources = append(sources, cached...)
	}
	return sourceHosts(sources)
}

// realRootPackages are the root filesystem's packages beyond minbase: what an EC2
// Debian AMI has that our user data needs. No Docker: cloud-init installs it.
var realRootPackages = []string{"systemd", "systemd-sysv", "dbus", "cloud-init", "openssh-server", "python3", "sudo", "ca-certificates"}

// aptProxyAddr is where, inside a worker's network namespace, the stack's package
// proxy answers; the root filesystem's apt is configured to use it.
const aptProxyAddr = "127.0.0.1:3142"

// amiFiles are what the stack adds to the built root filesystem to make it an "AMI"
// for its loopback EC2: NoCloud as the only datasource (the instance's user data is
// its seed), no network configuration by cloud-init (the namespace has only lo), apt
// through the stack's proxy, and no SSH host keys of the build's (cloud-init writes
// the instance's).
var amiFiles = map[string]string{
	"/etc/cloud/cloud.cfg.d/90-ec2-executor-stack.cfg": "datasource_list: [NoCloud, None]\nnetwork: {config: disabled}\n",
	"/etc/apt/apt.conf.d/90ec2-executor-stack-proxy":   fmt.Sprintf("Acquire::http::Proxy \"http://%s\";\n", aptProxyAddr),
}

var realRootMu sync.Mutex

// RealRoot returns the cached root filesystem, building it first if it is not there
// (with mmdebstrap, from Debian's repository: a run that cannot reach it fails).
func RealRoot(ctx context.Context) (string, error) {
	realRootMu.Lock()
	defer realRootMu.Unlock()
	dir := filepath.Join(RealRootCache, realRootName)
	if _, err := os.Stat(filepath.Join(dir, "etc", "os-release")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(RealRootCache, 0o755); err != nil {
		return "", err
	}
	sources, err := hostAptSources(aptSourcesRoot, realRootSuite)
	if err != nil {
		return "", err
	}
	tmp := dir + ".building"
	_ = os.RemoveAll(tmp)
	start := time.Now()
	args := []string{"--variant=minbase", "--include=" + strings.Join(realRootPackages, ","), realRootSuite, tmp}
	for _, s := range sources {
		args = append(args, s.line())
	}
	cmd := exec.CommandContext(ctx, "mmdebstrap", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(tmp)
		return "", fmt.Errorf("building the real-boot root filesystem with mmdebstrap (Debian's repository must be reachable): %w\n%s", err, tail(out, 3000))
	}
	if err := makeAMI(tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	logf("stack: built the real-boot root filesystem %s in %s", dir, time.Since(start).Round(time.Second))
	return dir, nil
}

// makeAMI turns the built tree into the stack's Debian "AMI".
func makeAMI(root string) error {
	keys, _ := filepath.Glob(filepath.Join(root, "etc/ssh/ssh_host_*"))
	for _, k := range keys {
		if err := os.Remove(k); err != nil {
			return err
		}
	}
	for path, content := range amiFiles {
		if err := writeIn(root, path, content, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeIn writes a file at path inside root.
func writeIn(root, path, content string, mode os.FileMode) error {
	full := filepath.Join(root, path)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	return os.WriteFile(full, []byte(content), mode)
}
