package pool

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ec2-executor/ec2-executor/statefile"
	"github.com/ec2-executor/ec2-executor/workers"
)

// Record is the pool's record of one of its workers.
type Record struct {
	// Key is the worker's own key: its batch's key and its launch index in that batch.
	Key string `json:"key"`
	// Batch is the key of the RunInstances call that launched it (its job-key tag
	// while the pool holds it), Index its launch index there: together they find the
	// instance of a record the pool saved without an id.
	Batch string        `json:"batch"`
	Index int           `json:"index"`
	Lease workers.Lease `json:"lease"` // holds the worker's private key: the book is 0600
	State string        `json:"state"` // booting, idle, stopped, starting or claimed
	// RootGiB is the root volume the pool launched it with (0: the AMI's).
	RootGiB int `json:"root_gib,omitempty"`
	// Arch is the architecture it was launched as (empty: instance.types', as
	// records from before architectures were kept say).
	Arch string `json:"arch,omitempty"`
	// Since is when it entered its state: launched, ready or claimed.
	Since     time.Time `json:"since"`
	ClaimedBy string    `json:"claimed_by,omitempty"`
	// ReservedFor is the key of the job whose claim this booting worker was launched
	// for: once ready it is that job's, never offered to another.
	ReservedFor *workers.Job `json:"reserved_for,omitempty"`
	// Builds is how many jobs it served; Project the project of the last (for
	// pool.reuse_scope).
	Builds  int    `json:"builds,omitempty"`
	Project string `json:"project,omitempty"`
}

// book is the pool's records, kept in one 0600 JSON file written atomically before
// any answer that depends on it.
type book struct {
	path    string
	Workers map[string]*Record `json:"workers"`
	// gen counts the changes that must reach the disk before their answer (claims);
	// saved is the last gen a save included. Claims that arrive together share one
	// save (group commit): one fsync per claim made a burst of 100 claims wait in
	// line for seconds on a busy disk, past the second a job waits for the pool.
	gen, saved uint64
}

// touch records a change that must be durable before it is answered.
func (b *book) touch() uint64 {
	b.gen++
	return b.gen
}

// durable saves unless a save since change gen already included it.
func (b *book) durable(gen uint64) error {
	if b.saved >= gen {
		return nil
	}
	return b.save()
}

func openBook(dir string) (*book, error) {
	b := &book{path: filepath.Join(dir, "pool", "workers.json"), Workers: map[string]*Record{}}
	data, err := os.ReadFile(b.path)
	if errors.Is(err, fs.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the pool's records: %w", err)
	}
	if err := json.Unmarshal(data, b); err != nil {
		return nil, fmt.Errorf("the pool's records %s are corrupt: %w", b.path, err)
	}
	if b.Workers == nil {
		b.Workers = map[string]*Record{}
	}
	return b, nil
}

// save writes the records (statefile: 0600, atomic, synced).
func (b *book) save() error {
	if err := statefile.Write(b.path, b); err != nil {
		return fmt.Errorf("saving the pool's records: %w", err)
	}
	b.saved = b.gen
	return nil
}

// count returns how many records are in each state.
func (b *book) count() map[string]int {
	n := map[string]int{workers.PoolBooting: 0, workers.PoolIdle: 0, workers.PoolStopped: 0, workers.PoolStarting: 0, workers.PoolClaimed: 0, workers.PoolEnding: 0}
	for _, w := range b.Workers {
		n[w.State]++
	}
	return n
}
