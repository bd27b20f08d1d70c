package workers

import (
	"maps"
	"time"

	"github.com/ec2-executor/ec2-executor/settings"
)

// Tag keys set on every instance in the RunInstances call itself.
const (
	TagManagedBy  = "managed-by"
	ManagedByThis = "ec2-executor"
	TagManager    = settings.TagPrefix + "manager"
	TagJobKey     = settings.TagPrefix + "job-key"
	TagJobID      = settings.TagPrefix + "job-id"
	TagProjectID  = settings.TagPrefix + "project-id"
	TagPipelineID = settings.TagPrefix + "pipeline-id"
	TagRunnerID   = settings.TagPrefix + "runner-id"
	TagCreatedAt  = settings.TagPrefix + "created-at"
	// TagExpiresAt is when the worker must be gone whatever its state: the reaper's
	// backstop for a job whose manager lost track of it.
	TagExpiresAt = settings.TagPrefix + "expires-at"
	// TagPoolState marks a worker the pool launched: booting, idle or stopped while
	// the pool holds it, claimed once a job has it (its job-key tag then names that job).
	TagPoolState = settings.TagPrefix + "pool-state"
)

// Pool states, in TagPoolState and the pool's own records.
const (
	PoolBooting  = "booting"
	PoolIdle     = "idle"
	PoolStopped  = "stopped"  // ready once, then stopped: costs only its disks
	PoolStarting = "starting" // a stopped worker being started for a claim
	PoolClaimed  = "claimed"
	PoolEnding   = "ending" // its job is done: the pool terminates it (records only)
)

// Job is what a worker is tagged with for one job. Key names the job's state and
// selects its instances; the ids are for cost reports and people. Name (not
// tagged) tells a retry of the job by its project, pipeline and name.
type Job struct {
	Key                                 string
	ID, ProjectID, PipelineID, RunnerID string
	Name                                string
}

// tags merges the operator's tags with the driver's own, which win; empty values are
// left out (EC2 accepts them, but they say nothing).
func (f *Fleet) tags(job Job, now time.Time) map[string]string {
	tags := maps.Clone(f.s.Instance.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	own := map[string]string{
		"Name":        "ec2-executor job " + job.ID,
		TagManagedBy:  ManagedByThis,
		TagManager:    f.s.ManagerID,
		TagJobKey:     job.Key,
		TagJobID:      job.ID,
		TagProjectID:  job.ProjectID,
		TagPipelineID: job.PipelineID,
		TagRunnerID:   job.RunnerID,
		TagCreatedAt:  now.UTC().Format(timeFormat),
		TagExpiresAt:  now.Add(f.s.Instance.MaxLifetime.Duration).UTC().Format(timeFormat),
	}
	for k, v := range own {
		if v != "" {
			tags[k] = v
		}
	}
	return tags
}

// jobTags select this manager's instances for a job.
func (f *Fleet) jobTags(key string) map[string]string {
	return map[string]string{TagManagedBy: ManagedByThis, TagManager: f.s.ManagerID, TagJobKey: key}
}

// ownership selects the driver's workers: this manager's, or every manager's.
func (f *Fleet) ownership(allManagers bool) map[string]string {
	tags := map[string]string{TagManagedBy: ManagedByThis}
	if !allManagers {
		tags[TagManager] = f.s.ManagerID
	}
	return tags
}

// timeFormat is how times are written in tags.
const timeFormat = time.RFC3339
