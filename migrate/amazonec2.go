package migrate

import (
	"context"
	"strconv"
	"strings"

	"github.com/ec2-executor/ec2-executor/settings"
)

// GroupResolver finds a security group's id by its name in a region and VPC ("" for
// any); it returns "" when EC2 cannot say (no credentials, no such group).
type GroupResolver func(ctx context.Context, region, name, vpc string) string

// machineOptions maps the MachineOptions of one runner onto its settings.
func (m *migration) machineOptions(ctx context.Context, s *settings.Settings, v runnerView) {
	opts, order := v.options()
	last := func(name string) string { vals := opts[name]; return vals[len(vals)-1] }
	for _, name := range order {
		val := last(name)
		if m.credential(v.name, name) || m.network(ctx, s, v.name, name, val, opts) || m.volumeAndMarket(s, v.name, name, val) ||
			m.access(s, v.name, name, val) || m.engine(s, v.name, name, opts[name]) {
			continue
		}
		m.report.add(v.name, name, NotSupported, "ec2-executor has no counterpart: see docs/migrating.md")
	}
}

// credential drops static keys: they never reach any output.
func (m *migration) credential(runner, name string) bool {
	switch name {
	case "amazonec2-access-key", "amazonec2-secret-key", "amazonec2-session-token":
		m.report.add(runner, name, NotSupported, "static AWS keys are never copied: give the manager an instance profile with examples/iam/manager-policy.json")
		return true
	}
	return false
}

// network maps where workers run and how they are reached.
func (m *migration) network(ctx context.Context, s *settings.Settings, runner, name, val string, opts map[string][]string) bool {
	switch name {
	case "amazonec2-region":
		s.AWS.Region = val
	case "amazonec2-ami":
		s.Instance.AMI, s.Instance.AMIParameter = val, ""
	case "amazonec2-instance-type":
		s.Instance.Types = []string{val}
		m.report.add(runner, name, Changed, "instance.types is a list: add fallback types tried on capacity errors")
		return true
	case "amazonec2-subnet-id":
		s.Instance.SubnetIDs = []string{val}
		m.report.add(runner, name, Changed, "instance.subnet_ids is a list: add subnets in other zones to fall back on")
		return true
	case "amazonec2-vpc-id", "amazonec2-zone":
		if len(opts["amazonec2-subnet-id"]) == 0 {
			s.Instance.SubnetIDs = []string{placeholder("subnet", val)}
			m.report.add(runner, name, NotSupported, "ec2-executor launches into instance.subnet_ids: replace the placeholder with the subnet ids of that VPC and zone")
			return true
		}
		m.report.add(runner, name, Changed, "the VPC and zone follow from instance.subnet_ids")
		return true
	case "amazonec2-security-group":
		m.securityGroups(ctx, s, runner, opts)
		return true
	case "amazonec2-security-group-readonly":
		m.report.add(runner, name, Changed, "ec2-executor never creates or changes security groups: it only uses instance.security_group_ids")
		return true
	case "amazonec2-iam-instance-profile":
		s.Instance.IAMInstanceProfile = val
	case "amazonec2-tags":
		s.Instance.Tags = tags(val)
	case "amazonec2-private-address-only", "amazonec2-use-private-address":
		s.SSH.Address = settings.AddressPrivate
	case "amazonec2-endpoint":
		s.AWS.Endpoint = val
	default:
		return false
	}
	m.report.add(runner, name, Mapped, "")
	return true
}

// securityGroups turns names into ids through EC2, or placeholders validate rejects.
func (m *migration) securityGroups(ctx context.Context, s *settings.Settings, runner string, opts map[string][]string) {
	if len(s.Instance.SecurityGroupIDs) > 0 {
		return // every amazonec2-security-group value was handled with the first
	}
	vpc := ""
	if v := opts["amazonec2-vpc-id"]; len(v) > 0 {
		vpc = v[len(v)-1]
	}
	for _, group := range opts["amazonec2-security-group"] {
		id := ""
		if m.resolve != nil {
			id = m.resolve(ctx, s.AWS.Region, group, vpc)
		}
		if id == "" {
			why := "EC2 could not resolve this name"
			if m.resolve == nil {
				why = "names were not resolved (migrate --resolve-security-groups asks EC2)"
			}
			s.Instance.SecurityGroupIDs = append(s.Instance.SecurityGroupIDs, placeholder("sg", group))
			m.report.add(runner, "amazonec2-security-group="+group, Changed, "ec2-executor takes group ids and "+why+": replace the placeholder in instance.security_group_ids (validate rejects it)")
			continue
		}
		s.Instance.SecurityGroupIDs = append(s.Instance.SecurityGroupIDs, id)
		m.report.add(runner, "amazonec2-security-group="+group, Changed, "resolved to "+id+" through EC2")
	}
}

// volumeAndMarket maps the root volume, the market and the instance's options.
func (m *migration) volumeAndMarket(s *settings.Settings, runner, name, val string) bool {
	switch name {
	case "amazonec2-root-size":
		n, err := strconv.Atoi(val)
		if err != nil {
			m.report.add(runner, name, NotSupported, "not a whole number of GiB: set instance.root_volume.size_gib")
			return true
		}
		s.Instance.RootVolume.SizeGiB = n
	case "amazonec2-volume-type":
		s.Instance.RootVolume.Type = val
	case "amazonec2-device-name":
		s.Instance.RootVolume.DeviceName = val
	case "amazonec2-request-spot-instance":
		s.Instance.Market = settings.MarketSpotFallback
		m.report.add(runner, name, Changed, "instance.market = \"spot-or-on-demand\" falls back to on-demand when spot has no capacity; \"spot\" keeps spot only")
		return true
	case "amazonec2-spot-price":
		s.Instance.SpotMaxPrice = val
	case "amazonec2-block-duration-minutes":
		m.report.add(runner, name, NotSupported, "EC2 no longer offers spot blocks")
		return true
	case "amazonec2-monitoring":
		s.Instance.DetailedMonitoring = true
	case "amazonec2-use-ebs-optimized-instance":
		s.Instance.EBSOptimized = true
	case "amazonec2-metadata-token":
		if val != "required" {
			m.report.add(runner, name, Changed, "ec2-executor always requires IMDSv2")
			return true
		}
	case "amazonec2-metadata-token-response-hop-limit":
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 {
			m.report.add(runner, name, NotSupported, "not a hop limit: set instance.metadata_hop_limit")
			return true
		}
		s.Instance.MetadataHopLimit = n
	default:
		return false
	}
	m.report.add(runner, name, Mapped, "")
	return true
}

// access maps how the manager reaches workers, and what it cannot carry over.
func (m *migration) access(s *settings.Settings, runner, name, val string) bool {
	switch name {
	case "amazonec2-ssh-port":
		n, err := strconv.Atoi(val)
		if err != nil {
			m.report.add(runner, name, NotSupported, "not a port: set ssh.port")
			return true
		}
		s.SSH.Port = n
		m.report.add(runner, name, Mapped, "")
	case "amazonec2-ssh-user", "amazonec2-ssh-keypath", "amazonec2-keypair-name":
		m.report.add(runner, name, Changed, "ec2-executor creates its own SSH user (ssh.user) with keys generated for each worker and a pinned host key; no EC2 key pair")
	case "amazonec2-userdata":
		m.report.add(runner, name, NotSupported, "ec2-executor writes the worker's cloud-config: put the file's commands in worker.runcmd, or its #cloud-config in worker.extra_cloud_config")
	case "amazonec2-open-port":
		m.report.add(runner, name, NotSupported, "workers are reached over SSH only; services run on the job's own network")
	case "amazonec2-retries":
		m.report.add(runner, name, Changed, "the AWS SDK's adaptive retry handles throttling and transient errors")
	case "amazonec2-insecure-transport":
		m.report.add(runner, name, NotSupported, "EC2 is always reached over TLS (aws.endpoint for a VPC endpoint)")
	default:
		return false
	}
	return true
}

// engine maps the Docker engine options onto the worker's daemon.json.
func (m *migration) engine(s *settings.Settings, runner, name string, vals []string) bool {
	switch name {
	case "engine-registry-mirror":
		s.Worker.RegistryMirrors = append(s.Worker.RegistryMirrors, vals...)
	case "engine-insecure-registry":
		s.Worker.InsecureRegistries = append(s.Worker.InsecureRegistries, vals...)
	case "engine-storage-driver":
		daemonOption(s, "storage-driver", vals[len(vals)-1])
	case "engine-install-url":
		m.report.add(runner, name, Changed, "cloud-init installs Docker from the distribution's packages when the AMI lacks it; no script from the internet")
		return true
	case "engine-opt", "engine-label":
		for _, v := range vals {
			k, val, _ := strings.Cut(v, "=")
			if name == "engine-label" {
				labels, _ := s.Worker.DaemonOptions["labels"].([]any)
				daemonOption(s, "labels", append(labels, v))
				continue
			}
			daemonOption(s, k, val)
		}
		m.report.add(runner, name, Changed, "written to worker.daemon_options (merged into the worker's daemon.json): check the names against daemon.json's")
		return true
	default:
		return false
	}
	m.report.add(runner, name, Mapped, "")
	return true
}

func daemonOption(s *settings.Settings, key string, v any) {
	if s.Worker.DaemonOptions == nil {
		s.Worker.DaemonOptions = map[string]any{}
	}
	s.Worker.DaemonOptions[key] = v
}

// tags parses amazonec2-tags' "key1,value1,key2,value2".
func tags(v string) map[string]string {
	parts := strings.Split(v, ",")
	out := map[string]string{}
	for i := 0; i+1 < len(parts); i += 2 {
		out[parts[i]] = parts[i+1]
	}
	return out
}

// placeholder is a value validate rejects, naming what to put there.
func placeholder(kind, from string) string {
	return kind + "-REPLACE-ME-" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, from)
}
