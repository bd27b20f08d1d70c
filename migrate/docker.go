package migrate

import (
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/ec2-executor/ec2-executor/settings"
)

// docker maps [runners.docker] onto the job's containers.
func (m *migration) docker(s *settings.Settings, v runnerView) {
	d := &s.Docker
	for _, key := range slices.Sorted(maps.Keys(v.docker)) {
		val := v.docker[key]
		mapped := true
		switch key {
		case "image":
			s.Job.DefaultImage = str(val)
		case "helper_image":
			s.Job.HelperImage = str(val)
		case "privileged":
			d.Privileged, _ = val.(bool)
		case "volumes":
			d.Volumes = stringList(val)
		case "pull_policy":
			if one := str(val); one != "" && len(stringList(val)) == 0 {
				d.PullPolicy = []string{one}
			} else {
				d.PullPolicy = stringList(val)
			}
		case "allowed_images":
			d.AllowedImages = stringList(val)
		case "allowed_services":
			d.AllowedServices = stringList(val)
		case "allowed_pull_policies":
			d.AllowedPullPolicies = stringList(val)
		case "services_limit":
			d.ServicesLimit, _ = integer(val)
		case "wait_for_services_timeout":
			n, _ := integer(val)
			d.WaitForServicesTimeout = settings.Duration{Duration: time.Duration(n) * time.Second}
		case "shm_size":
			n, _ := integer(val)
			d.ShmSize = strconv.Itoa(n)
		case "memory":
			d.Memory = str(val)
		case "cpus":
			d.CPUs = str(val)
		case "dns":
			d.DNS = stringList(val)
		case "dns_search":
			d.DNSSearch = stringList(val)
		case "extra_hosts":
			d.ExtraHosts = stringList(val)
		case "cap_add":
			d.CapAdd = stringList(val)
		case "cap_drop":
			d.CapDrop = stringList(val)
		case "sysctls":
			d.Sysctls = map[string]string{}
			if t, ok := val.(map[string]any); ok {
				for k, x := range t {
					d.Sysctls[k] = str(x)
				}
			}
		case "user":
			d.User = str(val)
		case "disable_entrypoint_overwrite":
			d.DisableEntrypointOverwrite, _ = val.(bool)
		case "tls_verify", "disable_cache", "cache_dir", "host", "tls_cert_path":
			m.report.add(v.name, "docker."+key, Changed, "not needed: ec2-executor reaches each worker's Docker over SSH, and caches go through [runners.cache]")
			mapped = false
		default:
			m.report.add(v.name, "docker."+key, NotSupported, "ec2-executor has no counterpart: see docs/migrating.md")
			mapped = false
		}
		if mapped {
			m.report.add(v.name, "docker."+key, Mapped, "")
		}
	}
}
