package workers

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/statefile"
)

// Settings are checked offline, so validate knows an instance type's architecture
// by its family's name (settings.ArchOf). Before a launch, EC2 has the last word:
// DescribeInstanceTypes for the types and DescribeImages for the AMI, so that a
// Graviton type listed for x86_64 workers, or an x86_64 AMI given for arm64 ones,
// fails with a sentence naming the setting, before RunInstances, instead of EC2's
// InvalidParameterValue. Neither answer ever changes (an AMI id is immutable), so
// the manager keeps them in <state_dir>/architectures.json: each type and image is
// asked about once.

// archCache is the manager's record of EC2's answers.
type archCache struct {
	Types  map[string]string `json:"types"`
	Images map[string]string `json:"images"`
}

func archCachePath(stateDir string) string { return filepath.Join(stateDir, "architectures.json") }

// loadArchCache reads the record; a missing or unreadable one is empty.
func loadArchCache(stateDir string) archCache {
	c := archCache{Types: map[string]string{}, Images: map[string]string{}}
	if b, err := os.ReadFile(archCachePath(stateDir)); err == nil {
		_ = json.Unmarshal(b, &c)
	}
	if c.Types == nil {
		c.Types = map[string]string{}
	}
	if c.Images == nil {
		c.Images = map[string]string{}
	}
	return c
}

// checkArch refuses a launch whose types or AMI EC2 says are not of the
// architecture the settings chose them for (in.Arch(), by family name). A lookup
// that fails (no permission, say) is logged and the launch goes ahead: EC2 itself
// then refuses a real mismatch.
func (f *Fleet) checkArch(ctx context.Context, in settings.Instance, ami string) error {
	if len(in.Types) == 0 {
		return nil // the launch template's type
	}
	want := in.Arch()
	c := loadArchCache(f.s.StateDir)
	if err := f.learnArchs(ctx, &c, in.Types, ami); err != nil {
		f.log.Warn("Could not ask EC2 for the workers' architecture; launching as the settings say", "error", err)
	}
	for _, t := range in.Types {
		if got := c.Types[t]; got != "" && got != want {
			return fmt.Errorf("instance type %s is %s (EC2's DescribeInstanceTypes), not %s like %s: list it under [instance.%s].types",
				t, got, want, in.Types[0], got)
		}
	}
	if got := c.Images[ami]; ami != "" && got != "" && got != want {
		return fmt.Errorf("AMI %s boots %s (EC2's DescribeImages), but its instance types (%s) are %s: set an %s image in instance.ami, or in instance.%s.ami for the jobs that ask for %s",
			ami, got, in.Types[0], want, want, want, want)
	}
	return nil
}

// learnArchs asks EC2 about the types and image the record lacks, and saves it.
func (f *Fleet) learnArchs(ctx context.Context, c *archCache, types []string, ami string) error {
	var missing []string
	for _, t := range types {
		if _, ok := c.Types[t]; !ok {
			missing = append(missing, t)
		}
	}
	_, knownImage := c.Images[ami]
	if len(missing) == 0 && (ami == "" || knownImage) {
		return nil
	}
	if len(missing) > 0 {
		archs, err := f.prov.TypeArchitectures(ctx, missing)
		if err != nil {
			return err
		}
		for _, t := range missing {
			c.Types[t] = archs[t] // "" for a type EC2 does not know: asked once
		}
	}
	if ami != "" && !knownImage {
		arch, err := f.prov.ImageArchitecture(ctx, ami)
		if err != nil {
			return err
		}
		c.Images[ami] = arch
	}
	return statefile.Write(archCachePath(f.s.StateDir), c)
}
