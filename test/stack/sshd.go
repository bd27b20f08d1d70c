package stack

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

// A booted worker is a real OpenSSH sshd on the instance's loopback address, with the
// user, host key and authorized key from the instance's own user data.

// sshdConfig is the worker's sshd_config: key-only login for the one user, with the
// stream-local forwarding the driver's Docker tunnel needs.
const sshdConfig = `ListenAddress %s:22
HostKey %s/host_ed25519
PidFile %s/sshd.pid
AuthorizedKeysFile %s/authorized_keys
AllowUsers %s
PermitRootLogin no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowStreamLocalForwarding yes
AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
LogLevel VERBOSE
SetEnv %s
`

func (b *Booter) startSSHD(dir, id, ip string, wc workerConfig, wrapper []string) (*proc, error) {
	b.mu.Lock()
	wrong := b.wrongKey
	b.mu.Unlock()
	if wrong {
		key, err := otherHostKey()
		if err != nil {
			return nil, err
		}
		wc.HostKey = key
	}
	if err := os.WriteFile(filepath.Join(dir, "host_ed25519"), wc.HostKey, 0o600); err != nil {
		return nil, err
	}
	if err := writeOwned(filepath.Join(dir, "authorized_keys"), []byte(strings.Join(wc.AuthorizedKeys, "\n")+"\n"), wc.User); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		return nil, err
	}
	if err := mkdirOwned(filepath.Join(dir, "home"), wc.User); err != nil {
		return nil, err
	}
	if err := os.Symlink(b.s.ecrLogin, filepath.Join(dir, "bin", "docker-credential-ecr-login")); err != nil && !os.IsExist(err) {
		return nil, err
	}
	cfg := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(sshdConfig, ip, dir, dir, dir, wc.User, workerSessionEnv(dir))), 0o600); err != nil {
		return nil, err
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, err
	}
	if out, err := exec.Command("/usr/sbin/sshd", "-t", "-f", cfg).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("sshd -t: %s", out)
	}
	return b.s.startWrapped("sshd-"+id, nil, wrapper, "/usr/sbin/sshd", "-D", "-e", "-f", cfg)
}

// ensureUser creates the cloud-config's SSH user on this machine, as cloud-init would
// on a worker; users the stack creates are removed when it stops.
func (b *Booter) ensureUser(wc workerConfig) error {
	b.userMu.Lock()
	defer b.userMu.Unlock()
	if _, err := user.Lookup(wc.User); err == nil {
		return nil
	}
	args := []string{"-M", "-s", "/bin/sh"}
	if len(wc.UserGroups) > 0 {
		args = append(args, "-G", strings.Join(wc.UserGroups, ","))
	}
	if out, err := exec.Command("useradd", append(args, wc.User)...).CombinedOutput(); err != nil {
		return fmt.Errorf("useradd %s: %s", wc.User, out)
	}
	// sshd without PAM refuses locked accounts; cloud-init's lock_passwd relies on PAM.
	if out, err := exec.Command("usermod", "-p", "*", wc.User).CombinedOutput(); err != nil {
		return fmt.Errorf("usermod %s: %s", wc.User, out)
	}
	b.mu.Lock()
	b.users = append(b.users, wc.User)
	b.mu.Unlock()
	return nil
}

// writeOwned writes a 0600 file owned by the named user (sshd reads authorized_keys
// with the user's rights).
func writeOwned(path string, data []byte, name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(path, uid, gid)
}

// mkdirOwned makes the worker user's home directory (the ECR helper writes its log there).
func mkdirOwned(path, name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(path, uid, gid)
}

// otherHostKey is a fresh ed25519 host key, not the one the driver pinned.
func otherHostKey() ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "impostor")
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(block), nil
}
