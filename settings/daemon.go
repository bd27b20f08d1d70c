package settings

import (
	"fmt"
	"sort"
)

// DaemonKind is the JSON type dockerd wants for a daemon.json key.
type DaemonKind int

// The kinds of daemon.json values.
const (
	DaemonString DaemonKind = iota
	DaemonNumber
	DaemonBool
	DaemonList   // a list of strings
	DaemonObject // a table
)

func (k DaemonKind) String() string {
	return [...]string{"a string", "a number", "true or false", "a list of strings", "a table"}[k]
}

// DaemonKeys are the well-known daemon.json keys and their types, as dockerd's
// config.Config declares them; a value of another type makes every worker's dockerd
// refuse to start.
var DaemonKeys = map[string]DaemonKind{
	"bip": DaemonString, "cgroup-parent": DaemonString, "data-root": DaemonString, "default-runtime": DaemonString,
	"default-shm-size": DaemonString, "exec-root": DaemonString, "fixed-cidr": DaemonString, "fixed-cidr-v6": DaemonString,
	"log-driver": DaemonString, "log-level": DaemonString, "metrics-addr": DaemonString, "seccomp-profile": DaemonString,
	"storage-driver": DaemonString, "userns-remap": DaemonString, "default-cgroupns-mode": DaemonString,
	"mtu": DaemonNumber, "max-concurrent-downloads": DaemonNumber, "max-concurrent-uploads": DaemonNumber,
	"max-download-attempts": DaemonNumber, "shutdown-timeout": DaemonNumber,
	"debug": DaemonBool, "experimental": DaemonBool, "icc": DaemonBool, "init": DaemonBool, "ip-forward": DaemonBool,
	"ip-masq": DaemonBool, "iptables": DaemonBool, "ip6tables": DaemonBool, "ipv6": DaemonBool, "live-restore": DaemonBool,
	"selinux-enabled": DaemonBool, "userland-proxy": DaemonBool, "no-new-privileges": DaemonBool,
	"dns": DaemonList, "dns-opts": DaemonList, "dns-search": DaemonList, "exec-opts": DaemonList, "labels": DaemonList,
	"storage-opts": DaemonList, "registry-mirrors": DaemonList, "insecure-registries": DaemonList,
	"log-opts": DaemonObject, "default-ulimits": DaemonObject, "runtimes": DaemonObject, "features": DaemonObject,
	"builder": DaemonObject, "default-address-pools": DaemonObject,
}

// checkDaemonOptions reports every well-known key whose value has the wrong type.
func checkDaemonOptions(opts map[string]any, add func(error)) {
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		want, known := DaemonKeys[k]
		if !known || daemonKindOf(opts[k], want) {
			continue
		}
		add(problem("worker.daemon_options", "%q must be %s in daemon.json, got %s (dockerd would refuse to start)", k, want, describe(opts[k])))
	}
	if opts["ipv6"] == true && opts["fixed-cidr-v6"] == nil {
		add(problem("worker.daemon_options", `"ipv6" = true needs "fixed-cidr-v6", an IPv6 subnet for the default bridge: dockerd refuses to start without one`))
	}
}

// daemonKindOf reports whether v, as TOML decodes it, is of kind k
// (default-address-pools is a list of tables, which TOML decodes as such).
func daemonKindOf(v any, k DaemonKind) bool {
	switch k {
	case DaemonString:
		_, ok := v.(string)
		return ok
	case DaemonNumber:
		switch v.(type) {
		case int64, int, float64:
			return true
		}
	case DaemonBool:
		_, ok := v.(bool)
		return ok
	case DaemonList:
		switch l := v.(type) {
		case []string:
			return true
		case []any:
			for _, x := range l {
				if _, ok := x.(string); !ok {
					return false
				}
			}
			return true
		}
	case DaemonObject:
		switch v.(type) {
		case map[string]any, []map[string]any:
			return true
		case []any:
			return true
		}
	}
	return false
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", x)
	case bool:
		return fmt.Sprintf("%v", x)
	case int64, int, float64:
		return fmt.Sprintf("the number %v", x)
	case []any, []string:
		return "a list"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}
