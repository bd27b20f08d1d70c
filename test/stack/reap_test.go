package stack

import (
	"slices"
	"testing"
)

// A killed stack's worker mounts are found wherever its directory was, and none of
// the machine's own mounts is taken for one.
func TestStaleWorkerMounts(t *testing.T) {
	mounts := []string{"/", "/boot", "/boot/efi", "/run", "/run/netns/ec2xr-0a1b2c3d", "/tmp",
		"/tmp/ec2-executor-e2e3933809937/stack/boot/i-c2a21d6e842c34ae8/docker-data",
		"/tmp/ec2-executor-e2e3933809937/stack/boot/i-c2a21d6e842c34ae8/docker-data/overlay2/28ba/merged",
		"/run/ec2x-42c34ae8/exec/netns/a413b759df20",
		"/srv/stack/boot/i-0123456789abcdef0/real/root",
		"/var/lib/docker/overlay2/ffff/merged"}
	want := []string{mounts[6], mounts[7], mounts[8], mounts[9]}
	if got := staleWorkerMounts(mounts); !slices.Equal(got, want) {
		t.Errorf("staleWorkerMounts = %q, want %q", got, want)
	}
}

// An earlier stack's worker sshd is found by its rewritten command line (the
// registry's exact match misses it); the machine's own sshd is not.
func TestWorkerProcessesAreFoundByTheirDirectory(t *testing.T) {
	for cmdline, want := range map[string]bool{
		"sshd: /usr/sbin/sshd -D -e -f /tmp/ec2-executor-e2e462151101/stack/boot/i-37ce3a59a4f1450a3/sshd_config [listener] 0 of 10-100 startups": true,
		"dockerd\x00--config-file\x00/tmp/s/boot/i-c2a21d6e842c34ae8/daemon.json":                                                                 true,
		"sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups":                                                                                 false,
		"/usr/bin/dockerd\x00-H\x00fd://": false,
	} {
		if got := workerDir.MatchString(cmdline); got != want {
			t.Errorf("%q: matched %v, want %v", cmdline, got, want)
		}
	}
}
