package stages

import (
	"time"

	"github.com/ec2-executor/ec2-executor/settings"
)

// Tag keys the driver sets on every instance in the RunInstances call itself.
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
)

// instanceTags merges the operator's tags with the driver's own, which win.
func (d *Driver) instanceTags(key string, now time.Time) map[string]string {
	tags := map[string]string{}
	for k, v := range d.Settings.Instance.Tags {
		tags[k] = v
	}
	v := d.Env.Vars
	own := map[string]string{
		"Name":        "ec2-executor job " + v["CI_JOB_ID"],
		TagManagedBy:  ManagedByThis,
		TagManager:    d.Settings.ManagerID,
		TagJobKey:     key,
		TagJobID:      v["CI_JOB_ID"],
		TagProjectID:  v["CI_PROJECT_ID"],
		TagPipelineID: v["CI_PIPELINE_ID"],
		TagRunnerID:   v["CI_RUNNER_ID"],
		TagCreatedAt:  now.UTC().Format(time.RFC3339),
		TagExpiresAt:  now.Add(d.Settings.Instance.MaxLifetime.Duration).UTC().Format(time.RFC3339),
	}
	for k, val := range own {
		if val != "" {
			tags[k] = val
		}
	}
	return tags
}

// ownTags selects this manager's instance for a job.
func (d *Driver) ownTags(key string) map[string]string {
	return map[string]string{TagManagedBy: ManagedByThis, TagManager: d.Settings.ManagerID, TagJobKey: key}
}
