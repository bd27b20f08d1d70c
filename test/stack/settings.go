package stack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

const settingsTemplate = `# Driver settings for the local stack (written by test/stack).
manager_id = "stack"
state_dir = %q

[aws]
region = %q
endpoint = %q

[instance]
ami = %q
type = "t3.micro"
subnet_id = %q
security_group_ids = [%q]
iam_instance_profile = %q
launch_timeout = "1m"
poll_interval = "100ms"
tags = { environment = "local-stack" }

[ssh]
user = "ec2-executor"
connect_timeout = "60s"
retry_interval = "200ms"

[job]
default_image = %q
helper_image = %q
`

// SettingsFor writes a driver settings file for the stack that sends EC2 calls to
// endpoint (moto, or a Proxy in front of it), with extra TOML appended to its [job]
// table.
func (s *Stack) SettingsFor(name, endpoint, extra string) (string, error) {
	body := fmt.Sprintf(settingsTemplate, filepath.Join(s.Dir, "state"), Region, endpoint, AMI, s.Seed.Subnet,
		s.Seed.SecurityGroup, s.Seed.InstanceProfile, JobImage, HelperImage) + extra
	p := filepath.Join(s.Dir, name)
	return p, os.WriteFile(p, []byte(body), 0o600)
}

func (s *Stack) writeSettings(context.Context) error {
	p, err := s.SettingsFor("settings.toml", MotoURL, "")
	s.SettingsFile = p
	return err
}
