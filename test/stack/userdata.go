package stack

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"
)

// workerConfig is what the boot simulator takes from an instance's #cloud-config.
type workerConfig struct {
	HostKey        []byte // OpenSSH private key
	AuthorizedKeys []string
	User           string
	UserGroups     []string
	// Files are the write_files contents by path.
	Files map[string]string
}

type cloudConfigDoc struct {
	Users      []yaml.Node       `yaml:"users"`
	SSHKeys    map[string]string `yaml:"ssh_keys"`
	WriteFiles []struct {
		Path    string `yaml:"path"`
		Content string `yaml:"content"`
	} `yaml:"write_files"`
}

type cloudUser struct {
	Name              string    `yaml:"name"`
	Groups            yaml.Node `yaml:"groups"`
	SSHAuthorizedKeys []string  `yaml:"ssh_authorized_keys"`
}

// SchemaCheck runs `cloud-init schema` on user data, as a worker would be judged.
func SchemaCheck(dir string, userData []byte) error {
	p := filepath.Join(dir, "user-data")
	if err := os.WriteFile(p, userData, 0o600); err != nil {
		return err
	}
	out, err := exec.Command("cloud-init", "schema", "--config-file", p).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cloud-init schema rejected the user data: %s", bytes.TrimSpace(out))
	}
	return nil
}

// keyMaterial matches what differs between two workers' user data of one shape:
// their keys (an OpenSSH PEM body, or an authorized_keys blob).
var keyMaterial = regexp.MustCompile(`(?s)-----BEGIN OPENSSH PRIVATE KEY-----.*?-----END OPENSSH PRIVATE KEY-----|ssh-ed25519 [A-Za-z0-9+/=]+`)

// schemaChecked holds the shapes (user data with its keys blanked) cloud-init has
// accepted: the schema checks structure and types, never a key's bytes, and a
// 0.5 s CPU Python run per instance made a 200-instance burst wait on the stack.
var schemaChecked sync.Map

// schemaCheckShape is SchemaCheck, once per shape of user data.
func schemaCheckShape(dir string, userData []byte) error {
	shape := sha256.Sum256(keyMaterial.ReplaceAll(userData, []byte("KEY")))
	if _, ok := schemaChecked.Load(shape); ok {
		return nil
	}
	if err := SchemaCheck(dir, userData); err != nil {
		return err
	}
	schemaChecked.Store(shape, true)
	return nil
}

// parseWorkerConfig extracts the SSH user, host key and authorized keys, checks the
// host key pair matches and every written *.json file parses.
func parseWorkerConfig(userData []byte) (workerConfig, error) {
	var doc cloudConfigDoc
	if err := yaml.Unmarshal(userData, &doc); err != nil {
		return workerConfig{}, fmt.Errorf("parsing user data: %w", err)
	}
	wc := workerConfig{HostKey: []byte(doc.SSHKeys["ed25519_private"])}
	if err := checkHostKey(wc.HostKey, doc.SSHKeys["ed25519_public"]); err != nil {
		return wc, err
	}
	for _, n := range doc.Users {
		var u cloudUser
		if n.Kind != yaml.MappingNode || n.Decode(&u) != nil {
			continue
		}
		wc.User, wc.AuthorizedKeys = u.Name, u.SSHAuthorizedKeys
		var groups []string
		if u.Groups.Decode(&groups) != nil {
			var g string
			_ = u.Groups.Decode(&g)
			groups = strings.Split(g, ",")
		}
		wc.UserGroups = groups
	}
	if wc.User == "" || len(wc.AuthorizedKeys) == 0 {
		return wc, errors.New("user data creates no user with ssh_authorized_keys")
	}
	wc.Files = map[string]string{}
	for _, f := range doc.WriteFiles {
		wc.Files[f.Path] = f.Content
		if strings.HasSuffix(f.Path, ".json") && !json.Valid([]byte(f.Content)) {
			return wc, fmt.Errorf("user data writes %s, which is not valid JSON", f.Path)
		}
	}
	return wc, nil
}

func checkHostKey(private []byte, public string) error {
	signer, err := ssh.ParsePrivateKey(private)
	if err != nil {
		return fmt.Errorf("ssh_keys.ed25519_private: %w", err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(public))
	if err != nil {
		return fmt.Errorf("ssh_keys.ed25519_public: %w", err)
	}
	if !bytes.Equal(signer.PublicKey().Marshal(), pub.Marshal()) {
		return errors.New("ssh_keys: the ed25519 private and public keys do not match")
	}
	return nil
}
