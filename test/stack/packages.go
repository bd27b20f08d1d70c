package stack

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// requirement is a program the stack runs and the Debian package that provides it.
type requirement struct{ path, pkg string }

var requirements = []requirement{
	{"/usr/sbin/dockerd", "docker.io"},
	{"/usr/bin/docker-registry", "docker-registry"},
	{"/usr/sbin/sshd", "openssh-server"},
	{"/usr/bin/cloud-init", "cloud-init"},
	{"/usr/bin/htpasswd", "apache2-utils"},
	{"/bin/busybox", "busybox-static"},
	{"/usr/bin/git", "git"},
	{"/usr/sbin/useradd", "passwd"},
	// The really booting workers (realboot.go).
	{"/usr/bin/mmdebstrap", "mmdebstrap"},
	{"/usr/bin/systemd-nspawn", "systemd-container"},
}

// EnsurePackages installs the Debian packages of missing programs with apt-get when
// it can (as root), and otherwise says exactly what is missing. moto_server comes from
// pip and cannot be installed here.
func EnsurePackages() error {
	if _, err := exec.LookPath("moto_server"); err != nil {
		return fmt.Errorf("moto_server is not on PATH: install moto[server] 5.x with pip (it cannot be installed by this stack)")
	}
	var missing []string
	for _, r := range requirements {
		if _, err := os.Stat(r.path); err != nil {
			missing = append(missing, r.pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("missing Debian packages %s and not root: run apt-get install -y %s", strings.Join(missing, " "), strings.Join(missing, " "))
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("missing packages %s and no apt-get to install them", strings.Join(missing, " "))
	}
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "NEEDRESTART_MODE=l")
	for _, args := range [][]string{{"update", "-qq"}, append([]string{"install", "-y", "-qq", "--no-install-recommends"}, missing...)} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s", args[0], err, tail(out, 2000))
		}
	}
	for _, r := range requirements {
		if _, err := os.Stat(r.path); err != nil {
			return fmt.Errorf("%s still missing after installing %s", r.path, r.pkg)
		}
	}
	return nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
