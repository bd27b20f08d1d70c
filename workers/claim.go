package workers

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/ec2-executor/ec2-executor/settings"
)

// Spec is what a job needs of a worker, after its allowed overrides: a pool worker
// matches when its type is one of Types, its market fits Market and its root volume
// is RootGiB (0: the AMI's, as the pool launched it).
type Spec struct {
	Types   []string `json:"types"`
	Market  string   `json:"market"`
	RootGiB int      `json:"root_gib"`
}

// SpecOf is the spec of the instance settings in.
func SpecOf(in settings.Instance) Spec {
	return Spec{Types: in.Types, Market: in.Market, RootGiB: in.RootVolume.SizeGiB}
}

// Fits reports whether a worker of type and market, with a root volume of rootGiB,
// serves s.
func (s Spec) Fits(typ string, spot bool, rootGiB int) bool {
	market := settings.MarketOnDemand
	if spot {
		market = settings.MarketSpot
	}
	marketOK := s.Market == market || (s.Market == settings.MarketSpotFallback)
	return marketOK && slices.Contains(s.Types, typ) && s.RootGiB == rootGiB
}

// ClaimRequest asks the pool for a worker; it is one JSON line on the pool's socket.
type ClaimRequest struct {
	Job  Job  `json:"job"`
	Spec Spec `json:"spec"`
}

// ClaimAnswer is one JSON line from the pool. Waiting comes first when the pool is at
// its cap and the claim waits for a worker; then exactly one of Lease (a hit), Miss
// (no worker fits: launch cold) or Error (a system failure, such as the cap) ends it.
type ClaimAnswer struct {
	Waiting    string    `json:"waiting,omitempty"`
	Lease      *Lease    `json:"lease,omitempty"`
	ReadySince time.Time `json:"ready_since,omitzero"`
	// StartedIn is how long starting a stopped worker for this claim took (0: it was idle).
	StartedIn time.Duration `json:"started_in,omitempty"`
	Miss      string        `json:"miss,omitempty"`
	Error     string        `json:"error,omitempty"`
}

// errNoPool means the pool is not running or did not answer in time: launch cold.
var errNoPool = errors.New("no pool answered")

// ErrPoolRefused is a claim the pool refused for good (say, at its cap after
// pool.claim_timeout): a system failure, not a reason to launch cold.
var ErrPoolRefused = errors.New("the pool refused the claim")

// Claim asks the pool on socket for a worker. A pool that is not there, or says
// nothing within answerWithin, is an error (Get then launches cold). A pool that
// says it waits (at its cap) is given up to wait for its final answer, and waiting
// is told why.
func Claim(ctx context.Context, socket string, req ClaimRequest, answerWithin, wait time.Duration, waiting func(string)) (ClaimAnswer, error) {
	d := net.Dialer{Timeout: answerWithin}
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return ClaimAnswer{}, fmt.Errorf("%w: %v", errNoPool, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(answerWithin))
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return ClaimAnswer{}, fmt.Errorf("%w: %v", errNoPool, err)
	}
	r := bufio.NewReader(conn)
	var a ClaimAnswer
	if err := readAnswer(r, &a); err != nil {
		return a, fmt.Errorf("%w: %v", errNoPool, err)
	}
	if a.Waiting == "" {
		return a, nil
	}
	waiting(a.Waiting)
	_ = conn.SetDeadline(time.Now().Add(wait))
	first := a
	a = ClaimAnswer{}
	if err := readAnswer(r, &a); err != nil {
		return first, fmt.Errorf("%w while %s: %v", ErrPoolRefused, first.Waiting, err)
	}
	return a, nil
}

func readAnswer(r *bufio.Reader, a *ClaimAnswer) error {
	line, err := r.ReadBytes('\n')
	if err != nil {
		return err
	}
	return json.Unmarshal(line, a)
}

// ReleaseRequest gives a claimed worker back to the pool after its job's cleanup
// removed the job's containers (pool.max_builds above 1).
type ReleaseRequest struct {
	Job        Job    `json:"job"`
	InstanceID string `json:"instance_id"`
}

// ReleaseAnswer says whether the pool kept the worker (wiped, to be offered again)
// or not, and why; a worker not kept is terminated by the job's cleanup.
type ReleaseAnswer struct {
	Kept   bool   `json:"kept"`
	Why    string `json:"why,omitempty"`
	Builds int    `json:"builds,omitempty"`
	Error  string `json:"error,omitempty"`
}
