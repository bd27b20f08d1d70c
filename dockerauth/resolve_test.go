package dockerauth

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
)

func TestImagePathNormalizes(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":                           "docker.io/library/nginx",
		"nginx:1.27":                      "docker.io/library/nginx",
		"index.docker.io/library/nginx:1": "docker.io/library/nginx",
		"Registry.Example.com:5000/a/b:1": "registry.example.com:5000/a/b",
		"127.0.0.1:5000/ci/job@sha256:" + strings.Repeat("a", 64): "127.0.0.1:5000/ci/job",
	} {
		got, err := ImagePath(in)
		if err != nil || got != want {
			t.Errorf("ImagePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ImagePath("nginx:bad tag"); err == nil {
		t.Error("want an error for an invalid reference")
	}
}

func TestNormalizeKey(t *testing.T) {
	for in, want := range map[string]string{
		"https://index.docker.io/v1/": "docker.io",
		"registry.example.com:5000/":  "registry.example.com:5000",
		"HTTPS://Reg.IO/group":        "reg.io/group",
		"gitlab.example.com:443":      "gitlab.example.com:443",
	} {
		if got := NormalizeKey(in); got != want {
			t.Errorf("NormalizeKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func auth(u, p string) string { return base64.StdEncoding.EncodeToString([]byte(u + ":" + p)) }

func TestPrecedenceAndLongestPath(t *testing.T) {
	r := NewResolver(context.Background(), Sources{
		DockerAuthConfig: `{"auths":{"reg.io":{"auth":"` + auth("dac", "p1") + `"},"reg.io/team/app":{"username":"deep","password":"p2"}}}`,
		JobCredentials:   []Credential{{Key: "reg.io/team", Username: "gitlab-ci-token", Password: "p3"}, {Key: "other.io", Username: "job", Password: "p4"}},
	})
	cases := map[string]string{
		"reg.io/team/app:1":   "deep",            // most specific path
		"reg.io/team/other:1": "gitlab-ci-token", // job credential is more specific than DOCKER_AUTH_CONFIG's host
		"reg.io/x:1":          "dac",
		"other.io/y":          "job",
	}
	for image, user := range cases {
		c, ok, err := r.For(context.Background(), image)
		if err != nil || !ok || c.Username != user {
			t.Errorf("For(%q) = %+v, %v, %v; want user %s", image, c, ok, err, user)
		}
	}
	if _, ok, _ := r.For(context.Background(), "docker.io/library/nginx"); ok {
		t.Error("no credential should match docker.io")
	}
}

func TestSameKeyFirstSourceWins(t *testing.T) {
	r := NewResolver(context.Background(), Sources{
		DockerAuthConfig: `{"auths":{"https://reg.io/v1/":{"auth":"` + auth("from-dac", "x") + `"}}}`,
		JobCredentials:   []Credential{{Key: "reg.io", Username: "from-job", Password: "y"}},
	})
	c, ok, _ := r.For(context.Background(), "reg.io/a")
	if !ok || c.Username != "from-dac" || c.Source != SourceDockerAuthConfig {
		t.Fatalf("got %+v", c)
	}
}

func TestMalformedDockerAuthConfigWarnsAndFallsThrough(t *testing.T) {
	secret := "s3cr3t-value"
	r := NewResolver(context.Background(), Sources{
		DockerAuthConfig: `{"auths":{"reg.io":{"auth":"` + secret,
		JobCredentials:   []Credential{{Key: "reg.io", Username: "job", Password: "y"}},
	})
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "DOCKER_AUTH_CONFIG") || strings.Contains(r.Warnings[0], secret) {
		t.Fatalf("warnings %q", r.Warnings)
	}
	if c, ok, _ := r.For(context.Background(), "reg.io/a"); !ok || c.Username != "job" {
		t.Fatalf("next source not used: %+v", c)
	}
}

func TestBadAuthEntryIsSkippedByName(t *testing.T) {
	r := NewResolver(context.Background(), Sources{DockerAuthConfig: `{"auths":{"reg.io":{"auth":"!!!"},"ok.io":{"auth":"` + auth("u", "p") + `"}}}`})
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], `auths["reg.io"]`) {
		t.Fatalf("warnings %q", r.Warnings)
	}
	if _, ok, _ := r.For(context.Background(), "ok.io/a"); !ok {
		t.Fatal("good entry lost")
	}
}

func FuzzImagePath(f *testing.F) {
	for _, s := range []string{"nginx", "a/b:1", "host:5000/x@sha256:" + strings.Repeat("0", 64), "::", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ImagePath(s)
		if err == nil && (p == "" || strings.ContainsAny(p, ":@") && !strings.Contains(strings.SplitN(p, "/", 2)[0], ":")) {
			t.Fatalf("ImagePath(%q) = %q", s, p)
		}
	})
}

func FuzzDockerConfig(f *testing.F) {
	f.Add(`{"auths":{"a":{"auth":"dTpw"}}}`)
	f.Add(`{"auths":[]}`)
	f.Fuzz(func(t *testing.T, doc string) {
		r := NewResolver(context.Background(), Sources{DockerAuthConfig: doc})
		for _, w := range r.Warnings {
			if len(doc) > 12 && strings.Contains(w, doc) {
				t.Fatalf("warning quotes the document: %q", w)
			}
		}
	})
}
