package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// EC2 announces a spot worker's reclaim two minutes ahead, and a raised risk of it
// (a rebalance recommendation) earlier still, only inside the instance: in its
// metadata service at 169.254.169.254. The driver reads it through the job's SSH
// connection (a direct-tcpip channel opened by the worker's sshd, so the request
// comes from the instance itself, within any hop limit), with IMDSv2's session
// token, which IMDSv1-disabled instances (the default of new AMIs) require.

// MetadataAddr is the instance metadata service, as the worker reaches it.
const MetadataAddr = "169.254.169.254:80"

// metadataTokenTTL is how long a session token asked for lives; one is reused
// until a minute before it ends.
const metadataTokenTTL = 6 * time.Hour

// SpotNotice is what EC2 has announced for a spot worker.
type SpotNotice struct {
	// Action is "terminate", "stop" or "hibernate" once EC2 has decided to reclaim
	// the worker, at Time; empty before.
	Action string    `json:"action,omitempty"`
	Time   time.Time `json:"time,omitempty"`
	// Rebalance is when EC2 recommended a rebalance (the worker is at raised risk
	// of interruption); zero when it has not.
	Rebalance time.Time `json:"rebalance,omitempty"`
}

// Reclaim reports whether EC2 has decided to take the worker back.
func (n SpotNotice) Reclaim() bool { return n.Action != "" }

// Metadata reads one worker's instance metadata.
type Metadata struct {
	http    *http.Client
	token   string
	expires time.Time
}

// Metadata reads the worker's instance metadata through its SSH connection.
func (w *Worker) Metadata() (*Metadata, error) {
	if w.ssh == nil {
		return nil, errNoSSH
	}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		return w.ssh.DialContext(ctx, "tcp", MetadataAddr)
	}
	return NewMetadata(dial), nil
}

// NewMetadata reads instance metadata over connections that dial makes.
func NewMetadata(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *Metadata {
	tr := &http.Transport{DialContext: dial, DisableKeepAlives: true, ResponseHeaderTimeout: 3 * time.Second}
	return &Metadata{http: &http.Client{Transport: tr, Timeout: 5 * time.Second}}
}

// SpotNotice reads the spot instance action and the rebalance recommendation.
func (m *Metadata) SpotNotice(ctx context.Context) (SpotNotice, error) {
	var n SpotNotice
	var action struct {
		Action string    `json:"action"`
		Time   time.Time `json:"time"`
	}
	found, err := m.getJSON(ctx, "/latest/meta-data/spot/instance-action", &action)
	if err != nil {
		return n, err
	}
	if found {
		n.Action, n.Time = action.Action, action.Time
	}
	var rebalance struct {
		NoticeTime time.Time `json:"noticeTime"`
	}
	if found, err = m.getJSON(ctx, "/latest/meta-data/events/recommendations/rebalance", &rebalance); err != nil {
		return n, err
	}
	if found {
		n.Rebalance = rebalance.NoticeTime
	}
	return n, nil
}

// getJSON decodes path's document into v; found is false when the service has none
// (404: nothing announced).
func (m *Metadata) getJSON(ctx context.Context, path string, v any) (found bool, err error) {
	token, err := m.sessionToken(ctx)
	if err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+MetadataAddr+path, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("X-aws-ec2-metadata-token", token)
	resp, err := m.http.Do(req)
	if err != nil {
		return false, fmt.Errorf("reading instance metadata %s: %w", path, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return false, nil
	case http.StatusUnauthorized:
		m.token = "" // expired or from before a restart of the service: ask again next time
		return false, fmt.Errorf("reading instance metadata %s: the session token was refused", path)
	default:
		return false, fmt.Errorf("reading instance metadata %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(v); err != nil {
		return false, fmt.Errorf("reading instance metadata %s: %w", path, err)
	}
	return true, nil
}

// sessionToken returns a live IMDSv2 session token, asking for one when needed.
func (m *Metadata) sessionToken(ctx context.Context) (string, error) {
	if m.token != "" && time.Now().Before(m.expires) {
		return m.token, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+MetadataAddr+"/latest/api/token", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", strconv.Itoa(int(metadataTokenTTL.Seconds())))
	resp, err := m.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("asking the instance metadata service for a session token: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("asking the instance metadata service for a session token: %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if err != nil || len(b) == 0 {
		return "", fmt.Errorf("asking the instance metadata service for a session token: empty answer (%v)", err)
	}
	m.token, m.expires = string(b), time.Now().Add(metadataTokenTTL-time.Minute)
	return m.token, nil
}
