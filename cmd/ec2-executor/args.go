package main

import "strings"

// globalFlags are the flags every command takes.
var globalFlags = map[string]bool{"config": true, "log-level": true, "log-format": true}

// hoistFlags moves global flags written after the command's name
// (`ec2-executor validate --config F`) in front of it, where the CLI library reads
// them, so they work in either place. Everything else keeps its order, and nothing
// after "--" is touched.
func hoistFlags(args []string) []string {
	if len(args) < 2 {
		return args
	}
	front, rest := []string{args[0]}, []string{}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, _, inline := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || !globalFlags[name] {
			rest = append(rest, a)
			continue
		}
		front = append(front, a)
		if !inline && i+1 < len(args) {
			front = append(front, args[i+1])
			i++
		}
	}
	return append(front, rest...)
}
