package dockerauth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/docker/docker-credential-helpers/client"

	"github.com/ec2-executor/ec2-executor/statefile"
)

// SourceECRManager and SourceECRWorker name the ECR fallbacks in the job log.
const (
	SourceECRManager = "ECR token from the manager's AWS identity"
	SourceECRWorker  = "ECR token from the worker's instance profile"
)

var ecrHost = regexp.MustCompile(`^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$`)

// ECRRegistry reports whether host is an ECR registry, and its account and region.
func ECRRegistry(host string) (account, region string, ok bool) {
	m := ecrHost.FindStringSubmatch(host)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// ECRAPI is the one ECR call manager mode makes.
type ECRAPI interface {
	GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, optFns ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
}

var _ ECRAPI = (*ecr.Client)(nil)

// TokenCache gets ECR tokens with the manager's AWS identity and keeps them, one 0600
// file per region in Dir, until Margin before they expire (ECR tokens
// live 12 hours), so the stage processes of many jobs share one token.
type TokenCache struct {
	Dir    string
	Margin time.Duration
	Now    func() time.Time
	// API returns an ECR client for a region.
	API func(ctx context.Context, region string) (ECRAPI, error)
}

type cachedToken struct {
	Username  string    `json:"username"`
	Password  string    `json:"password"` // secret
	ExpiresAt time.Time `json:"expires_at"`
}

// For returns a token for an ECR host, from the cache while it is fresh.
func (c *TokenCache) For(ctx context.Context, host string) (Credential, bool, error) {
	_, region, ok := ECRRegistry(host)
	if !ok {
		return Credential{}, false, nil
	}
	path := filepath.Join(c.Dir, region+".json")
	if t, err := c.read(path); err == nil && c.Now().Add(c.Margin).Before(t.ExpiresAt) {
		return Credential{Key: host, Username: t.Username, Password: t.Password, Source: SourceECRManager + " (cached)"}, true, nil
	}
	t, err := c.fetch(ctx, host, region)
	if err != nil {
		return Credential{}, false, err
	}
	if err := c.write(path, t); err != nil {
		return Credential{}, false, err
	}
	return Credential{Key: host, Username: t.Username, Password: t.Password, Source: SourceECRManager}, true, nil
}

// fetch asks ECR for a token in region. It names no registry: a token covers every
// registry, of any account, that the manager's identity may reach (which is why ECR
// deprecated GetAuthorizationToken's registryIds), so one per region serves all.
func (c *TokenCache) fetch(ctx context.Context, host, region string) (cachedToken, error) {
	api, err := c.API(ctx, region)
	if err != nil {
		return cachedToken{}, err
	}
	out, err := api.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return cachedToken{}, fmt.Errorf("getting an ECR token for %s in %s: %w", host, region, err)
	}
	if len(out.AuthorizationData) == 0 {
		return cachedToken{}, fmt.Errorf("getting an ECR token for %s in %s: ECR returned none", host, region)
	}
	d := out.AuthorizationData[0]
	user, pass, err := decodeAuth(aws.ToString(d.AuthorizationToken))
	if err != nil {
		return cachedToken{}, fmt.Errorf("getting an ECR token for %s in %s: the token %w", host, region, err)
	}
	return cachedToken{Username: user, Password: pass, ExpiresAt: aws.ToTime(d.ExpiresAt)}, nil
}

func (c *TokenCache) read(path string) (cachedToken, error) {
	var t cachedToken
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	return t, err
}

// write replaces the cache file (statefile: 0600, atomic, synced): it holds a secret.
func (c *TokenCache) write(path string, t cachedToken) error {
	if err := statefile.Write(path, t); err != nil {
		return fmt.Errorf("caching the ECR token: %w", err)
	}
	return nil
}

// WorkerHelper asks the worker's docker-credential-ecr-login (installed by cloud-init)
// for an ECR token, so only the worker's instance profile needs ECR rights. Run
// executes a command on the worker with stdin and returns its stdout.
type WorkerHelper struct {
	Run func(ctx context.Context, command string, stdin io.Reader) ([]byte, error)
}

// For returns the worker helper's credential for an ECR host.
func (w WorkerHelper) For(ctx context.Context, host string) (Credential, bool, error) {
	if _, _, ok := ECRRegistry(host); !ok {
		return Credential{}, false, nil
	}
	c, err := client.Get(func(args ...string) client.Program {
		return &remoteProgram{ctx: ctx, run: w.Run, command: "docker-credential-ecr-login " + strings.Join(args, " ")}
	}, host)
	if err != nil {
		return Credential{}, false, fmt.Errorf("asking the worker's docker-credential-ecr-login for %s: %s", host, firstLine(err.Error()))
	}
	return Credential{Key: host, Username: c.Username, Password: c.Secret, Source: SourceECRWorker}, true, nil
}

// remoteProgram is client.Program over a command run on the worker.
type remoteProgram struct {
	ctx     context.Context
	run     func(context.Context, string, io.Reader) ([]byte, error)
	command string
	stdin   io.Reader
}

func (p *remoteProgram) Input(in io.Reader) { p.stdin = in }
func (p *remoteProgram) Output() ([]byte, error) {
	if p.stdin == nil {
		p.stdin = bytes.NewReader(nil)
	}
	return p.run(p.ctx, p.command, p.stdin)
}
