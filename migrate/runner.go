package migrate

import (
	"fmt"
	"strconv"
	"strings"
)

// runnerView reads the docker+machine parts of one [[runners]] entry from the
// generic document, so every other key of the entry is kept exactly as decoded.
type runnerView struct {
	raw     map[string]any
	name    string
	machine map[string]any
	docker  map[string]any
}

func viewOf(raw map[string]any) runnerView {
	v := runnerView{raw: raw, name: str(raw["name"])}
	v.machine, _ = raw["machine"].(map[string]any)
	v.docker, _ = raw["docker"].(map[string]any)
	return v
}

// isAmazonMachine reports whether the runner is docker+machine with amazonec2.
func (v runnerView) isAmazonMachine() bool {
	return str(v.raw["executor"]) == "docker+machine" && v.machine != nil && str(v.machine["MachineDriver"]) == "amazonec2"
}

// options parses MachineOptions ("amazonec2-region=eu-west-1", "engine-registry-mirror=…")
// into name → values, in order (some options repeat).
func (v runnerView) options() (map[string][]string, []string) {
	out := map[string][]string{}
	var order []string
	list, _ := v.machine["MachineOptions"].([]any)
	for _, item := range list {
		name, value, _ := strings.Cut(strings.TrimLeft(str(item), "-"), "=")
		if _, seen := out[name]; !seen {
			order = append(order, name)
		}
		out[name] = append(out[name], value)
	}
	return out, order
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func integer(v any) (int, bool) {
	switch x := v.(type) {
	case int64:
		return int(x), true
	case int:
		return x, true
	case float64:
		return int(x), true
	case string:
		n, err := strconv.Atoi(x)
		return n, err == nil
	}
	return 0, false
}

func stringList(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		out = append(out, str(x))
	}
	return out
}
