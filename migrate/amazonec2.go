package migrate

import (
	"context"
	"fmt"
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
	m.absent(s, v.name, opts)
}

// absent says what docker-machine did by default for options the runner does not
// set, where ec2-executor's default differs, and keeps docker-machine's where that
// is safe (the 16 GiB root volume).
func (m *migration) absent(s *settings.Settings, runner string, opts map[string][]string) {
	has := func(names ...string) bool {
		for _, n := range names {
			if _, ok := opts[n]; ok {
				return true
			}
		}
		return false
	}
	if !has("amazonec2-root-size") {
		s.Instance.RootVolume.SizeGiB = 16
		m.report.add(runner, "amazonec2-root-size (not set)", Changed, "instance.root_volume.size_gib = 16, docker-machine's default (an AMI's own is often 8 GiB)")
	}
	if !has("amazonec2-metadata-token") {
		m.report.add(runner, "amazonec2-metadata-token (not set)", Changed, "docker-machine's default allows IMDSv1, so job containers could use the worker's role; ec2-executor requires IMDSv2 with hop limit 1, so they cannot: instance.metadata_hop_limit = 2 gives it back to jobs that need it")
	}
	if !has("amazonec2-ami") {
		m.report.add(runner, "amazonec2-ami (not set)", Changed, "docker-machine's default AMI is Ubuntu's; instance.ami_ssm_parameter takes the latest Amazon Linux 2023, where cloud-init installs Docker")
	}
	if !has("amazonec2-use-private-address", "amazonec2-private-address-only") {
		m.report.add(runner, "amazonec2-use-private-address (not set)", Changed, "docker-machine dials workers' public addresses by default; ssh.address = \"private\" needs the manager inside (or routed to) the workers' VPC, else set ssh.address = \"public\"")
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
		s.Instance.Tags = m.tags(runner, name, val)
		return true
	case "amazonec2-private-address-only", "amazonec2-use-private-address":
		on, ok := m.boolean(runner, name, val)
		if !ok {
			return true
		}
		s.SSH.Address = settings.AddressPublic
		if on {
			s.SSH.Address = settings.AddressPrivate
		}
		m.report.add(runner, name, Mapped, "ssh.address = \""+s.SSH.Address+"\"")
		return true
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
		on, ok := m.boolean(runner, name, val)
		if !ok {
			return true
		}
		if !on {
			m.report.add(runner, name, Mapped, "instance.market = \"on-demand\"")
			return true
		}
		s.Instance.Market = settings.MarketSpotFallback
		m.report.add(runner, name, Changed, "instance.market = \"spot-or-on-demand\" falls back to on-demand when spot has no capacity; \"spot\" keeps spot only")
		return true
	case "amazonec2-spot-price":
		s.Instance.SpotMaxPrice = val
	case "amazonec2-block-duration-minutes":
		m.report.add(runner, name, NotSupported, "EC2 no longer offers spot blocks")
		return true
	case "amazonec2-monitoring", "amazonec2-use-ebs-optimized-instance":
		on, ok := m.boolean(runner, name, val)
		if !ok {
			return true
		}
		key := "instance.detailed_monitoring"
		if name == "amazonec2-monitoring" {
			s.Instance.DetailedMonitoring = on
		} else {
			s.Instance.EBSOptimized, key = on, "instance.ebs_optimized"
		}
		m.report.add(runner, name, Mapped, key+" = "+strconv.FormatBool(on))
		return true
	case "amazonec2-metadata-token":
		if val != "required" {
			m.report.add(runner, name, Changed, "ec2-executor always requires IMDSv2 (instance.metadata_hop_limit = 2 lets job containers use the worker's role)")
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
	case "engine-label":
		for _, v := range vals {
			labels, _ := s.Worker.DaemonOptions["labels"].([]any)
			daemonOption(s, "labels", append(labels, v))
		}
		m.report.add(runner, name, Mapped, `worker.daemon_options "labels"`)
		return true
	case "engine-opt":
		for _, v := range vals {
			m.engineOpt(s, runner, v)
		}
		return true
	default:
		return false
	}
	m.report.add(runner, name, Mapped, "")
	return true
}

// engineOpt maps one engine-opt ("flag=value" or "flag value", as docker-machine
// passes it to dockerd's command line) onto daemon.json's key for that flag, with
// the type dockerd reads. A flag it does not know is reported, never guessed.
func (m *migration) engineOpt(s *settings.Settings, runner, opt string) {
	flag, arg := splitFlag(opt)
	option := "engine-opt=" + opt
	switch flag {
	case "registry-mirror":
		s.Worker.RegistryMirrors = append(s.Worker.RegistryMirrors, arg)
		m.report.add(runner, option, Mapped, "worker.registry_mirrors")
		return
	case "insecure-registry":
		s.Worker.InsecureRegistries = append(s.Worker.InsecureRegistries, arg)
		m.report.add(runner, option, Mapped, "worker.insecure_registries")
		return
	}
	key := daemonKey(flag)
	kind, known := settings.DaemonKeys[key]
	if !known {
		m.report.add(runner, option, NotSupported, "not a dockerd flag migrate knows the daemon.json key of: add it to worker.daemon_options yourself")
		return
	}
	v, err := daemonValue(s.Worker.DaemonOptions[key], key, kind, arg)
	if err != nil {
		m.report.add(runner, option, NotSupported, err.Error()+": nothing was written for it")
		return
	}
	daemonOption(s, key, v)
	m.report.add(runner, option, Mapped, fmt.Sprintf("worker.daemon_options %q", key))
}

// splitFlag splits "log-opt max-size=50m" or "log-opt=max-size=50m" at the first
// space or equals sign.
func splitFlag(opt string) (string, string) {
	opt = strings.TrimLeft(strings.TrimSpace(opt), "-")
	if i := strings.IndexAny(opt, " ="); i >= 0 {
		return opt[:i], strings.TrimSpace(opt[i+1:])
	}
	return opt, ""
}

// pluralKeys are the daemon.json keys of repeatable dockerd flags.
var pluralKeys = map[string]string{"log-opt": "log-opts", "dns-opt": "dns-opts", "storage-opt": "storage-opts",
	"exec-opt": "exec-opts", "label": "labels", "default-ulimit": "default-ulimits"}

func daemonKey(flag string) string {
	if k, ok := pluralKeys[flag]; ok {
		return k
	}
	return flag
}

// daemonValue is arg as daemon.json holds key's value, merged with what is there.
func daemonValue(prev any, key string, kind settings.DaemonKind, arg string) (any, error) {
	switch kind {
	case settings.DaemonNumber:
		n, err := strconv.ParseInt(arg, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", arg)
		}
		return n, nil
	case settings.DaemonBool:
		if arg == "" {
			return true, nil
		}
		b, err := strconv.ParseBool(arg)
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", arg)
		}
		return b, nil
	case settings.DaemonList:
		list, _ := prev.([]any)
		return append(list, arg), nil
	case settings.DaemonObject:
		return daemonTable(prev, key, arg)
	}
	return arg, nil
}

// daemonTable adds "name=value" to log-opts, or a ulimit "nofile=1024:2048" to
// default-ulimits in dockerd's {"Name","Soft","Hard"} form.
func daemonTable(prev any, key, arg string) (any, error) {
	table, _ := prev.(map[string]any)
	if table == nil {
		table = map[string]any{}
	}
	name, value, ok := strings.Cut(arg, "=")
	if !ok || name == "" {
		return nil, fmt.Errorf("%q is not name=value", arg)
	}
	switch key {
	case "log-opts":
		table[name] = value
	case "default-ulimits":
		soft, hard, _ := strings.Cut(value, ":")
		if hard == "" {
			hard = soft
		}
		s, err1 := strconv.ParseInt(soft, 10, 64)
		h, err2 := strconv.ParseInt(hard, 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%q is not a ulimit like nofile=1024:2048", arg)
		}
		table[name] = map[string]any{"Name": name, "Soft": s, "Hard": h}
	default:
		return nil, fmt.Errorf("%s takes a structure migrate does not write", key)
	}
	return table, nil
}

func daemonOption(s *settings.Settings, key string, v any) {
	if s.Worker.DaemonOptions == nil {
		s.Worker.DaemonOptions = map[string]any{}
	}
	s.Worker.DaemonOptions[key] = v
}

// boolean parses a docker-machine boolean flag as its CLI does: bare is true, else
// strconv.ParseBool's true/false/1/0. A value that does not parse is reported, not
// mapped.
func (m *migration) boolean(runner, name, val string) (bool, bool) {
	if val == "" {
		return true, true
	}
	b, err := strconv.ParseBool(strings.TrimSpace(val))
	if err != nil {
		m.report.add(runner, name, NotSupported, fmt.Sprintf("%q is not true or false: nothing was written for it", val))
		return false, false
	}
	return b, true
}

// tags parses amazonec2-tags' "key1,value1,key2,value2"; a key without a value and
// a Name tag (ec2-executor names each worker by its job) are reported.
func (m *migration) tags(runner, name, v string) map[string]string {
	parts := strings.Split(v, ",")
	out := map[string]string{}
	for i := 0; i+1 < len(parts); i += 2 {
		out[parts[i]] = parts[i+1]
	}
	var notes []string
	if len(parts)%2 == 1 {
		notes = append(notes, fmt.Sprintf("the last item %q has no value and was dropped", parts[len(parts)-1]))
	}
	if _, ok := out["Name"]; ok {
		notes = append(notes, "ec2-executor sets each worker's Name tag to its job (\"ec2-executor job 123\"), over yours")
	}
	if len(notes) > 0 {
		m.report.add(runner, name, Changed, "instance.tags: "+strings.Join(notes, "; "))
	} else {
		m.report.add(runner, name, Mapped, "instance.tags")
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
