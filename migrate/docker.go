package migrate

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/ec2-executor/ec2-executor/settings"
)

// docker maps [runners.docker] onto the job's containers. A value of a type the
// key does not take is reported, not mapped.
func (m *migration) docker(s *settings.Settings, v runnerView) {
	d := &s.Docker
	for _, key := range slices.Sorted(maps.Keys(v.docker)) {
		val := v.docker[key]
		note, ok := "", true
		switch key {
		case "image":
			s.Job.DefaultImage, ok = text(val)
		case "helper_image":
			s.Job.HelperImage, ok = text(val)
		case "privileged":
			d.Privileged, ok = val.(bool)
		case "services_privileged":
			var b bool
			b, ok = val.(bool)
			d.ServicesPrivileged = &b
		case "disable_entrypoint_overwrite":
			d.DisableEntrypointOverwrite, ok = val.(bool)
		case "volumes":
			d.Volumes, ok = texts(val)
		case "pull_policy":
			if one, isText := val.(string); isText {
				d.PullPolicy = []string{one}
			} else {
				d.PullPolicy, ok = texts(val)
			}
		case "allowed_images":
			d.AllowedImages, ok = texts(val)
		case "allowed_services":
			d.AllowedServices, ok = texts(val)
		case "allowed_pull_policies":
			d.AllowedPullPolicies, ok = texts(val)
		case "services_limit":
			d.ServicesLimit, ok = integer(val)
		case "wait_for_services_timeout":
			var n int
			n, ok = integer(val)
			switch {
			case ok && n < 0:
				m.report.add(v.name, "docker."+key, NotSupported, fmt.Sprintf("%d (do not wait) has no counterpart: services are waited for up to docker.wait_for_services_timeout (%s kept)", n, d.WaitForServicesTimeout.Duration))
				continue
			case ok && n > 0:
				d.WaitForServicesTimeout = settings.Duration{Duration: time.Duration(n) * time.Second}
			case ok:
				note = "0 is the default: docker.wait_for_services_timeout stays " + d.WaitForServicesTimeout.Duration.String()
			}
		case "shm_size":
			var n int
			n, ok = integer(val)
			d.ShmSize = strconv.Itoa(n)
		case "memory":
			d.Memory, ok = text(val)
		case "cpus":
			d.CPUs, ok = text(val)
		case "service_memory":
			d.ServiceMemory, ok = text(val)
		case "service_cpus":
			d.ServiceCPUs, ok = text(val)
		case "services_security_opt":
			d.ServicesSecurityOpt, ok = texts(val)
		case "services_tmpfs":
			d.ServicesTmpfs, ok = textTable(val)
		case "dns":
			d.DNS, ok = texts(val)
		case "dns_search":
			d.DNSSearch, ok = texts(val)
		case "extra_hosts":
			d.ExtraHosts, ok = texts(val)
		case "cap_add":
			d.CapAdd, ok = texts(val)
		case "cap_drop":
			d.CapDrop, ok = texts(val)
		case "sysctls":
			d.Sysctls, ok = textTable(val)
		case "user":
			d.User, ok = text(val)
		case "tls_verify", "disable_cache", "cache_dir", "host", "tls_cert_path":
			m.report.add(v.name, "docker."+key, Changed, "not needed: ec2-executor reaches each worker's Docker over SSH, and caches go through [runners.cache]")
			continue
		default:
			m.report.add(v.name, "docker."+key, NotSupported, "ec2-executor has no counterpart: see docs/migrating.md")
			continue
		}
		if !ok {
			m.report.add(v.name, "docker."+key, NotSupported, fmt.Sprintf("%v is not a value docker.%s takes: nothing was written for it", val, key))
			continue
		}
		m.report.add(v.name, "docker."+key, Mapped, note)
	}
}

func text(v any) (string, bool) {
	s, ok := v.(string)
	return s, ok
}

// texts is a TOML list of strings.
func texts(v any) ([]string, bool) {
	list, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// textTable is a TOML table of strings.
func textTable(v any) (map[string]string, bool) {
	t, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	out := map[string]string{}
	for k, x := range t {
		s, ok := x.(string)
		if !ok {
			return nil, false
		}
		out[k] = s
	}
	return out, true
}
