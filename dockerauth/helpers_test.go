package dockerauth

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeHelpers puts docker-credential-<name> scripts on PATH, as gitlab-runner's own
// tests do: "store" lists reg.io and store.io; "slow" never answers; each get prints
// a login naming the helper.
func fakeHelpers(t *testing.T) Helpers {
	t.Helper()
	dir := t.TempDir()
	script := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, "docker-credential-"+name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script("store", `case "$1" in
list) echo '{"https://reg.io/v1/":"u","store.io":"u"}' ;;
get) read host; echo "{\"ServerURL\":\"$host\",\"Username\":\"store-user\",\"Secret\":\"store-secret\"}" ;;
esac`)
	script("pinned", `read host; echo "{\"ServerURL\":\"$host\",\"Username\":\"pinned-user\",\"Secret\":\"pinned-secret\"}"`)
	script("broken", `echo "credentials not found in native keychain"; exit 1`)
	script("slow", `sleep 30`)
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	return Helpers{Timeout: 500 * time.Millisecond}
}

func TestHelpersLayerOverAuthsInOneConfig(t *testing.T) {
	h := fakeHelpers(t)
	doc := `{"auths":{"reg.io":{"auth":"` + auth("plain", "p") + `"},"auths-only.io":{"auth":"` + auth("plain", "p") + `"}},
		"credsStore":"store","credHelpers":{"store.io":"pinned"}}`
	r := NewResolver(context.Background(), Sources{ManagerConfig: doc, ManagerConfigPath: "/home/runner/.docker/config.json", Helpers: h})
	for image, want := range map[string]string{
		"reg.io/a:1":        "store-user",  // credsStore replaces auths
		"store.io/b:1":      "pinned-user", // credHelpers replace credsStore
		"auths-only.io/c:1": "plain",
	} {
		c, ok, err := r.For(context.Background(), image)
		if err != nil || !ok || c.Username != want {
			t.Errorf("%s: %+v %v %v, want %s", image, c, ok, err, want)
		}
		if strings.Contains(c.Source, "secret") {
			t.Errorf("source names a secret: %q", c.Source)
		}
	}
	c, _, _ := r.For(context.Background(), "store.io/b:1")
	if c.Source != "/home/runner/.docker/config.json credHelpers pinned" {
		t.Errorf("source %q", c.Source)
	}
}

func TestPrecedenceAcrossTheThreeSources(t *testing.T) {
	h := fakeHelpers(t)
	r := NewResolver(context.Background(), Sources{
		DockerAuthConfig: `{"credHelpers":{"reg.io":"pinned"}}`, // unlike gitlab-runner, helpers work here
		ManagerConfig:    `{"auths":{"reg.io":{"auth":"` + auth("manager", "p") + `"},"mgr.io":{"auth":"` + auth("manager", "p") + `"}}}`,
		JobCredentials:   []Credential{{Key: "mgr.io", Username: "job", Password: "p"}, {Key: "job.io", Username: "job", Password: "p"}},
		Helpers:          h,
	})
	for image, want := range map[string]string{"reg.io/x": "pinned-user", "mgr.io/x": "manager", "job.io/x": "job"} {
		if c, ok, err := r.For(context.Background(), image); err != nil || !ok || c.Username != want {
			t.Errorf("%s: %+v %v, want %s", image, c, err, want)
		}
	}
}

func TestHelperWithAPathRefusesTheSource(t *testing.T) {
	h := fakeHelpers(t)
	for _, name := range []string{"../../bin/evil", "/usr/bin/x", `..\x`, ".."} {
		doc := `{"auths":{"reg.io":{"auth":"` + auth("u", "p") + `"}},"credHelpers":{"reg.io":"` + strings.ReplaceAll(name, `\`, `\\`) + `"}}`
		r := NewResolver(context.Background(), Sources{DockerAuthConfig: doc, Helpers: h,
			JobCredentials: []Credential{{Key: "reg.io", Username: "job", Password: "p"}}})
		if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "may not contain a path") {
			t.Errorf("%q: warnings %q", name, r.Warnings)
		}
		if c, _, _ := r.For(context.Background(), "reg.io/a"); c.Username != "job" {
			t.Errorf("%q: the refused source was still used: %+v", name, c)
		}
	}
}

func TestFailingOrSlowHelperWarnsAndTheNextSourceIsUsed(t *testing.T) {
	h := fakeHelpers(t)
	for _, helper := range []string{"broken", "slow", "missing"} {
		r := NewResolver(context.Background(), Sources{DockerAuthConfig: `{"credHelpers":{"reg.io":"` + helper + `"}}`, Helpers: h,
			JobCredentials: []Credential{{Key: "reg.io", Username: "job", Password: "p"}}})
		start := time.Now()
		c, ok, err := r.For(context.Background(), "reg.io/a")
		if err != nil || !ok || c.Username != "job" || time.Since(start) > 5*time.Second {
			t.Errorf("%s: %+v %v after %s", helper, c, err, time.Since(start))
		}
		if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "docker-credential-"+helper) {
			t.Errorf("%s: warnings %q", helper, r.Warnings)
		}
	}
}
