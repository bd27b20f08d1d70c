package workers

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// ProtocolVersion is the version of the pool socket's protocol. A driver and a pool
// of different versions refuse each other with a message saying so (the job then
// launches its worker itself), instead of misreading each other's lines. Raise it
// with any change an older peer would misread.
const ProtocolVersion = 2

// Request is the one JSON line a client sends on the pool's socket: exactly one of
// Claim, Release or Status.
type Request struct {
	Version int             `json:"version"`
	Claim   *ClaimRequest   `json:"claim,omitempty"`
	Release *ReleaseRequest `json:"release,omitempty"`
	Status  bool            `json:"status,omitempty"`
}

// Answer is one JSON line from the pool. Lines with Waiting say why the request
// waits and are followed by more; the final line has the answer to the request's
// kind, or Error when the pool refused it (an unreadable request, a peer without
// the right, another protocol version).
type Answer struct {
	Version int             `json:"version"`
	Waiting string          `json:"waiting,omitempty"`
	Claim   *ClaimAnswer    `json:"claim,omitempty"`
	Release *ReleaseAnswer  `json:"release,omitempty"`
	Status  json.RawMessage `json:"status,omitempty"` // the pool's own type (pool.Status)
	Error   string          `json:"error,omitempty"`
}

// Refusal is the answer to a request the pool will not serve.
func Refusal(why string) Answer { return Answer{Version: ProtocolVersion, Error: why} }

// VersionRefusal is the pool's refusal of a request of another version, or "" when
// the versions agree.
func VersionRefusal(theirs int) string {
	if theirs == ProtocolVersion {
		return ""
	}
	return versionMismatch("this pool", ProtocolVersion, "the driver", theirs)
}

func versionMismatch(self string, mine int, peer string, theirs int) string {
	return fmt.Sprintf("%s speaks pool protocol %d and %s %s: run one ec2-executor release for the pool and the runner's "+
		"driver (restart the pool after an upgrade)", self, mine, peer, spoken(theirs))
}

func spoken(v int) string {
	if v == 0 {
		return "an older one (before versions)"
	}
	return fmt.Sprintf("%d", v)
}

// ClaimRequest asks the pool for a worker. With Launch, a pool that has none that
// fits launches one for the job, batched with the other claims that arrive with
// it, instead of answering a miss.
type ClaimRequest struct {
	Job    Job  `json:"job"`
	Spec   Spec `json:"spec"`
	Launch bool `json:"launch,omitempty"`
}

// ClaimAnswer is the pool's final answer to a claim: exactly one of Lease (a hit),
// Miss (no worker fits: the job launches its own) or Error (a system failure, such
// as the cap).
type ClaimAnswer struct {
	Lease      *Lease    `json:"lease,omitempty"`
	ReadySince time.Time `json:"ready_since,omitzero"`
	// StartedIn is how long starting a stopped worker for this claim took (0: it was idle).
	StartedIn time.Duration `json:"started_in,omitempty"`
	// Launched says how the pool launched a worker for this claim ("": it was ready).
	Launched string `json:"launched,omitempty"`
	Miss     string `json:"miss,omitempty"`
	Error    string `json:"error,omitempty"`
}

// ReleaseRequest gives a claimed worker back to the pool after its job's cleanup
// removed the job's containers: the pool wipes and keeps it (pool.max_builds above
// 1) or terminates it.
type ReleaseRequest struct {
	Job        Job    `json:"job"`
	InstanceID string `json:"instance_id"`
	// SpotNotice says EC2 announced the worker's reclaim or recommended its
	// rebalance while the job ran: the pool ends it instead of offering it again.
	SpotNotice bool `json:"spot_notice,omitempty"`
}

// ReleaseAnswer says whether the pool kept the worker (wiped, to be offered again)
// or ended it, or neither, and why; a worker neither kept nor ended is terminated
// by the job's cleanup.
type ReleaseAnswer struct {
	Kept bool `json:"kept"`
	// Ended says the pool terminated the worker itself (with the releases that came
	// with it, in one call): the job's cleanup has nothing left to end.
	Ended  bool   `json:"ended,omitempty"`
	Why    string `json:"why,omitempty"`
	Builds int    `json:"builds,omitempty"`
}

// errNoPool means the pool is not running, did not answer in time or speaks
// another protocol version: the job launches its own worker.
var errNoPool = errors.New("no pool answered")

// ErrPoolRefused is a request the pool refused for good (say, a claim at its cap
// after pool.claim_timeout): a system failure, not a reason to launch cold.
var ErrPoolRefused = errors.New("the pool refused")

// Ask sends req to the pool on socket and returns its final answer. A pool that is
// not there, says nothing within answerWithin, speaks another version or goes away
// (a restart) is errNoPool. A pool that says it waits is given up to wait for each
// next line, and waiting is told why, each time; one that then says nothing for
// that long is ErrPoolRefused.
func Ask(ctx context.Context, socket string, req Request, answerWithin, wait time.Duration, waiting func(string)) (Answer, error) {
	req.Version = ProtocolVersion
	d := net.Dialer{Timeout: answerWithin}
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return Answer{}, fmt.Errorf("%w: %v", errNoPool, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(answerWithin))
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return Answer{}, fmt.Errorf("%w: %v", errNoPool, err)
	}
	r := bufio.NewReader(conn)
	var last string
	for {
		var a Answer
		if err := readAnswer(r, &a); err != nil {
			var nerr net.Error
			switch {
			case last == "":
				return a, fmt.Errorf("%w: %v", errNoPool, err)
			case errors.As(err, &nerr) && nerr.Timeout():
				return a, fmt.Errorf("%w: no answer while %s: %v", ErrPoolRefused, last, err)
			}
			return a, fmt.Errorf("%w: it went away while %s: %v", errNoPool, last, err)
		}
		if a.Version != ProtocolVersion {
			return a, fmt.Errorf("%w: %s", errNoPool, versionMismatch("this driver", ProtocolVersion, "the pool on "+socket, a.Version))
		}
		if a.Waiting == "" {
			return a, nil
		}
		last = a.Waiting
		waiting(a.Waiting)
		_ = conn.SetDeadline(time.Now().Add(wait))
	}
}

func readAnswer(r *bufio.Reader, a *Answer) error {
	line, err := r.ReadBytes('\n')
	if err != nil {
		return err
	}
	return json.Unmarshal(line, a)
}

// Claim asks the pool on socket for a worker (Ask with a claim). A refusal is
// ErrPoolRefused; an answer without a claim is errNoPool.
func Claim(ctx context.Context, socket string, req ClaimRequest, answerWithin, wait time.Duration, waiting func(string)) (ClaimAnswer, error) {
	a, err := Ask(ctx, socket, Request{Claim: &req}, answerWithin, wait, waiting)
	switch {
	case err != nil:
		return ClaimAnswer{}, err
	case a.Error != "":
		return ClaimAnswer{Error: a.Error}, nil
	case a.Claim == nil:
		return ClaimAnswer{}, fmt.Errorf("%w: the pool's answer has no claim", errNoPool)
	}
	return *a.Claim, nil
}
