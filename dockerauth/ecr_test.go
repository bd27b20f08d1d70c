package dockerauth

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

// fakeECR hands out numbered tokens valid for 12 hours from now().
type fakeECR struct {
	calls []string
	now   func() time.Time
	err   error
}

func (f *fakeECR) GetAuthorizationToken(_ context.Context, _ *ecr.GetAuthorizationTokenInput, _ ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error) {
	f.calls = append(f.calls, "GetAuthorizationToken")
	if f.err != nil {
		return nil, f.err
	}
	tok := base64.StdEncoding.EncodeToString([]byte("AWS:token-" + string(rune('0'+len(f.calls)))))
	return &ecr.GetAuthorizationTokenOutput{AuthorizationData: []types.AuthorizationData{{
		AuthorizationToken: aws.String(tok), ExpiresAt: aws.Time(f.now().Add(12 * time.Hour))}}}, nil
}

const ecrImage = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app:1"

func TestECRTokensAreCachedUntilNearExpiryAcrossProcesses(t *testing.T) {
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	api := &fakeECR{now: clock}
	var regions []string
	dir := t.TempDir()
	cache := func() *TokenCache { // a new one per "stage process", sharing the directory
		return &TokenCache{Dir: dir, Margin: 30 * time.Minute, Now: clock,
			API: func(_ context.Context, region string) (ECRAPI, error) {
				regions = append(regions, region)
				return api, nil
			}}
	}
	get := func() Credential {
		r := NewResolver(context.Background(), Sources{Fallback: cache()})
		c, ok, err := r.For(context.Background(), ecrImage)
		if err != nil || !ok {
			t.Fatalf("%+v %v %v", c, ok, err)
		}
		return c
	}
	first := get()
	if first.Username != "AWS" || first.Password != "token-1" || first.Source != SourceECRManager || regions[0] != "eu-west-1" {
		t.Fatalf("first token %+v, calls %v, regions %v", first, api.calls, regions)
	}
	now = now.Add(11 * time.Hour)
	if c := get(); c.Password != "token-1" || len(api.calls) != 1 || !strings.HasSuffix(c.Source, "(cached)") {
		t.Fatalf("not reused within its life: %+v after %d calls", c, len(api.calls))
	}
	now = now.Add(40 * time.Minute) // 20 minutes before expiry: inside the margin
	if c := get(); c.Password != "token-2" || len(api.calls) != 2 {
		t.Fatalf("not refreshed near expiry: %+v after %d calls", c, len(api.calls))
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	st, err := os.Stat(files[0])
	if len(files) != 1 || err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("cache files %v: %v %v", files, st.Mode(), err)
	}
}

func TestExplicitCredentialWinsOverECRAndOtherHostsSkipIt(t *testing.T) {
	api := &fakeECR{now: time.Now, err: errors.New("must not be called")}
	cache := &TokenCache{Dir: t.TempDir(), Now: time.Now, API: func(context.Context, string) (ECRAPI, error) { return api, nil }}
	r := NewResolver(context.Background(), Sources{Fallback: cache,
		JobCredentials: []Credential{{Key: "123456789012.dkr.ecr.eu-west-1.amazonaws.com", Username: "explicit", Password: "p"}}})
	if c, _, err := r.For(context.Background(), ecrImage); err != nil || c.Username != "explicit" {
		t.Fatalf("%+v %v", c, err)
	}
	if _, ok, err := r.For(context.Background(), "reg.io/x:1"); ok || err != nil || len(api.calls) != 0 {
		t.Fatalf("ECR asked for a non-ECR host: %v %v %v", ok, err, api.calls)
	}
}

func TestECRErrorNamesRegistryAndRegion(t *testing.T) {
	api := &fakeECR{now: time.Now, err: errors.New("AccessDeniedException: not authorized")}
	cache := &TokenCache{Dir: t.TempDir(), Now: time.Now, API: func(context.Context, string) (ECRAPI, error) { return api, nil }}
	_, _, err := NewResolver(context.Background(), Sources{Fallback: cache}).For(context.Background(), ecrImage)
	if err == nil || !strings.Contains(err.Error(), "123456789012.dkr.ecr.eu-west-1.amazonaws.com in eu-west-1") {
		t.Fatalf("got %v", err)
	}
}

func TestWorkerHelperSpeaksTheHelperProtocolOverRun(t *testing.T) {
	var ran string
	w := WorkerHelper{Run: func(_ context.Context, command string, stdin io.Reader) ([]byte, error) {
		in, _ := io.ReadAll(stdin)
		ran = command + " <" + strings.TrimSpace(string(in))
		return []byte(`{"ServerURL":"x","Username":"AWS","Secret":"worker-token"}`), nil
	}}
	c, ok, err := w.For(context.Background(), "123456789012.dkr.ecr.eu-west-1.amazonaws.com")
	if err != nil || !ok || c.Password != "worker-token" || c.Source != SourceECRWorker {
		t.Fatalf("%+v %v %v", c, ok, err)
	}
	if ran != "docker-credential-ecr-login get <123456789012.dkr.ecr.eu-west-1.amazonaws.com" {
		t.Fatalf("ran %q", ran)
	}
	if _, ok, _ := w.For(context.Background(), "reg.io"); ok {
		t.Fatal("worker helper used for a non-ECR host")
	}
}

func TestECRRegistryHosts(t *testing.T) {
	for host, want := range map[string]string{
		"123456789012.dkr.ecr.us-east-1.amazonaws.com":          "123456789012 us-east-1",
		"123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com": "123456789012 us-gov-west-1",
		"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn":      "123456789012 cn-north-1",
		"12345.dkr.ecr.us-east-1.amazonaws.com":                 "",
		"123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.io":  "",
	} {
		a, r, ok := ECRRegistry(host)
		if got := strings.TrimSpace(a + " " + r); got != want || ok != (want != "") {
			t.Errorf("%s: %q %v, want %q", host, got, ok, want)
		}
	}
}

func TestRewritesApplyTheFirstMatchingPrefix(t *testing.T) {
	rules := []Rewrite{{Prefix: "docker.io/library/", Replacement: "mirror.io/hub/library/"},
		{Prefix: "docker.io/", Replacement: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/docker-hub/"}}
	for in, want := range map[string]string{
		"alpine:3.20":          "mirror.io/hub/library/alpine:3.20",
		"bitnami/redis":        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/docker-hub/bitnami/redis:latest",
		"quay.io/prometheus/x": "quay.io/prometheus/x",
	} {
		got, _, err := ApplyRewrites(in, rules)
		if err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", in, got, err, want)
		}
	}
	if _, _, err := ApplyRewrites("alpine", []Rewrite{{Prefix: "docker.io/", Replacement: "bad space/"}}); err == nil {
		t.Error("a rewrite to an invalid reference must fail")
	}
}

func FuzzApplyRewrites(f *testing.F) {
	f.Add("alpine:3", "docker.io/", "mirror.io/")
	f.Fuzz(func(t *testing.T, image, prefix, repl string) {
		out, changed, err := ApplyRewrites(image, []Rewrite{{Prefix: prefix, Replacement: repl}})
		if err == nil && changed {
			if _, perr := ImagePath(out); perr != nil {
				t.Fatalf("rewrite produced an invalid reference %q", out)
			}
		}
	})
}
