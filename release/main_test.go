package main

import "testing"

func TestPackageVersions(t *testing.T) {
	for in, want := range map[string]string{"v1.2.3": "1.2.3", "1.2.3-rc.1": "1.2.3-rc.1", "86551e4-dirty": "0.0.0+git.86551e4.dirty", "dev": "0.0.0+git.dev"} {
		if got := packageVersion(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
