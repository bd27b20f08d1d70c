package stack

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/ec2-executor/ec2-executor/settings"
)

// Settings returns driver settings for the stack: moto (or a Proxy in front of it) as
// the endpoint, the seeded subnet, security group and profile, and fast polling.
func (s *Stack) Settings(endpoint string) settings.Settings {
	c := settings.Default()
	c.ManagerID = "stack"
	c.StateDir = filepath.Join(s.Dir, "state")
	c.AWS = settings.AWS{Region: Region, Endpoint: endpoint}
	in := &c.Instance
	in.AMI = AMI
	in.Types = []string{"t3.micro"}
	in.SubnetIDs = []string{s.Seed.Subnet}
	in.SecurityGroupIDs = []string{s.Seed.SecurityGroup}
	in.IAMInstanceProfile = s.Seed.InstanceProfile
	in.LaunchTimeout = settings.Duration{Duration: time.Minute}
	in.PollInterval = settings.Duration{Duration: 100 * time.Millisecond}
	in.Tags = map[string]string{"environment": "local-stack"}
	// The stack has no package repositories: the booter plays cloud-init's part.
	c.Worker.ECRCredentialHelper = false
	c.SSH.ConnectTimeout = settings.Duration{Duration: time.Minute}
	c.SSH.RetryInterval = settings.Duration{Duration: 200 * time.Millisecond}
	c.Job.DefaultImage = JobImage
	c.Job.HelperImage = HelperImage
	// Every job container can reach the stand-in jobs API (artifact uploads).
	c.Docker.Volumes = []string{s.RoutesVolume()}
	return c
}

// SettingsFor writes the stack's settings, changed by edit (may be nil), as a TOML
// file named name in the stack directory.
func (s *Stack) SettingsFor(name, endpoint string, edit func(*settings.Settings)) (string, error) {
	c := s.Settings(endpoint)
	if edit != nil {
		edit(&c)
	}
	var buf bytes.Buffer
	buf.WriteString("# Driver settings for the local stack (written by test/stack).\n")
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return "", err
	}
	p := filepath.Join(s.Dir, name)
	return p, os.WriteFile(p, buf.Bytes(), 0o600)
}

// writeSettings writes the tests' settings (jobs bring their own registry login, so
// every credential source can be tested) and the ones `stack up` prints, which are
// ready to use as they are: the manager's Docker config logs in to the stack's
// registry, so a job with no credentials of its own pulls the default job image.
func (s *Stack) writeSettings(context.Context) error {
	p, err := s.SettingsFor("settings.toml", s.Endpoint(), nil)
	if err != nil {
		return err
	}
	s.SettingsFile = p
	config := filepath.Join(s.Dir, "manager-docker", "config.json")
	if err := os.MkdirAll(filepath.Dir(config), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(config, []byte(RegistryAuthConfig(RegistryUser, RegistryPassword)), 0o600); err != nil {
		return err
	}
	s.ReadySettingsFile, err = s.SettingsFor("stack-up.toml", s.Endpoint(), func(c *settings.Settings) { c.Registry.DockerConfig = config })
	return err
}

// RegistryAuthConfig is a Docker config.json with one login for the stack's registry.
func RegistryAuthConfig(user, password string) string {
	return `{"auths":{"` + RegistryAddr + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte(user+":"+password)) + `"}}}`
}
