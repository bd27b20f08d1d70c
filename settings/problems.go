package settings

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// decodeProblems finds every problem in a settings document that decodes as TOML
// but not into Settings: each top-level entry, and within a table each of its keys,
// is decoded on its own, so one wrong type does not hide the next. It also returns
// the settings decoded from every entry that has no type problem, so that their
// values can be validated too. It returns nil problems when the document is not
// TOML at all.
func decodeProblems(doc string) ([]string, Settings) {
	var raw map[string]any
	s := Default()
	if _, err := toml.Decode(doc, &raw); err != nil {
		return nil, s
	}
	var problems []string
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		problems = append(problems, entryProblems(raw, []string{k}, raw[k])...)
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(raw); err == nil {
		_, _ = toml.Decode(buf.String(), &s)
	}
	return problems, s
}

// entryProblems decodes the value at path alone; a table that fails is searched key
// by key for the entries that cause it. An entry with a type problem is removed
// from parent, which leaves what can be decoded.
func entryProblems(parent map[string]any, path []string, v any) []string {
	md, err := toml.Decode(encodeAt(path, v), new(Settings))
	if err == nil {
		return unknownKeys(md.Undecoded())
	}
	if table, ok := v.(map[string]any); ok && len(table) > 0 {
		var out []string
		for _, k := range slices.Sorted(maps.Keys(table)) {
			out = append(out, entryProblems(table, append(path[:len(path):len(path)], k), table[k])...)
		}
		if len(out) > 0 {
			return out
		}
	}
	delete(parent, path[len(path)-1])
	return []string{strings.Join(path, ".") + ": " + typeProblem(err)}
}

// encodeAt writes v as a TOML document with v at the dotted path.
func encodeAt(path []string, v any) string {
	for i := len(path) - 1; i >= 0; i-- {
		v = map[string]any{path[i]: v}
	}
	var buf bytes.Buffer
	_ = toml.NewEncoder(&buf).Encode(v)
	return buf.String()
}

// typeProblem is the decoder's complaint without its position in a document that
// only exists here.
func typeProblem(err error) string {
	var perr toml.ParseError
	msg := err.Error()
	if errors.As(err, &perr) {
		msg = perr.Message
	}
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "toml: line") {
		msg = msg[i+2:]
	}
	return strings.TrimPrefix(msg, "toml: ")
}

// unknownKeys names each key the settings do not have, once, with the closest known
// key of the same table when one is near.
func unknownKeys(undecoded []toml.Key) []string {
	var names []string
	for _, k := range undecoded {
		if !freeForm(k.String()) {
			names = append(names, k.String())
		}
	}
	sort.Strings(names)
	var out []string
	for _, k := range leaves(names) {
		line := k + ": unknown key"
		if guess := closestKey(k); guess != "" {
			line += " (did you mean " + guess + "?)"
		}
		out = append(out, line)
	}
	return out
}

// closestKey is the known key nearest to key in spelling, anywhere in the settings,
// if it is near enough to be a typo, else a key of the same table whose name ends
// or begins the unknown one ("instance.instance_types" for instance.types,
// "instance.subnet_id" for instance.subnet_ids), as names from other tools are.
func closestKey(key string) string {
	if guess := closestSpelling(key); guess != "" {
		return guess
	}
	table, leaf := splitKey(key)
	for _, known := range Keys() {
		kt, kl := splitKey(known)
		if kt == table && len(kl) > 2 && (strings.HasSuffix(leaf, "_"+kl) || strings.HasPrefix(kl, leaf) || strings.HasPrefix(leaf, kl)) {
			return known
		}
	}
	return ""
}

func splitKey(key string) (string, string) {
	if i := strings.LastIndex(key, "."); i >= 0 {
		return key[:i], key[i+1:]
	}
	return "", key
}

func closestSpelling(key string) string {
	best, bestDist := "", len(key)/3+1
	for _, known := range Keys() {
		if d := editDistance(key, known); d < bestDist || (d == bestDist && best == "" && d <= 2) {
			best, bestDist = known, d
		}
	}
	if best == key {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
