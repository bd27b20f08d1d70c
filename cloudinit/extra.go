package cloudinit

import (
	"errors"
	"fmt"
	"slices"

	"gopkg.in/yaml.v3"
)

// appendable are the keys whose lists an extra part extends; every other key the
// driver sets is its own (users, ssh_keys, ...) and an extra part may not touch it.
var appendable = []string{"groups", "packages", "write_files", "runcmd"}

// mergeExtra folds the operator's extra #cloud-config part into doc: new keys are
// added, lists under appendable keys are appended (runcmd before the readiness
// marker, so the worker is ready only after the operator's commands ran).
func mergeExtra(doc *yaml.Node, extra string) error {
	if extra == "" {
		return nil
	}
	var part yaml.Node
	if err := yaml.Unmarshal([]byte(extra), &part); err != nil {
		return fmt.Errorf("not valid YAML: %w", err)
	}
	if len(part.Content) == 0 {
		return nil
	}
	m := part.Content[0]
	if m.Kind != yaml.MappingNode {
		return errors.New("must be a mapping of cloud-config keys")
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if err := mergeKey(doc, m.Content[i].Value, m.Content[i+1]); err != nil {
			return err
		}
	}
	return nil
}

func mergeKey(doc *yaml.Node, key string, val *yaml.Node) error {
	ours := lookup(doc, key)
	switch {
	case ours == nil:
		doc.Content = append(doc.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, val)
		return nil
	case !slices.Contains(appendable, key):
		return fmt.Errorf("sets %q, which ec2-executor manages", key)
	case val.Kind != yaml.SequenceNode:
		return fmt.Errorf("%q must be a list", key)
	case key == "runcmd":
		last := len(ours.Content) - 1 // the readiness marker stays last
		ours.Content = append(append(slices.Clone(ours.Content[:last]), val.Content...), ours.Content[last])
		return nil
	case key == "write_files":
		if err := checkPaths(val, ours); err != nil {
			return err
		}
	}
	ours.Content = append(ours.Content, val.Content...)
	return nil
}

// checkPaths refuses an extra file that would replace one of the driver's.
func checkPaths(extra, ours *yaml.Node) error {
	taken := map[string]bool{}
	for _, f := range ours.Content {
		if p := lookup(f, "path"); p != nil {
			taken[p.Value] = true
		}
	}
	for _, f := range extra.Content {
		if p := lookup(f, "path"); p != nil && taken[p.Value] {
			return fmt.Errorf("write_files path %s is already written by ec2-executor", p.Value)
		}
	}
	return nil
}

func lookup(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
