package stages

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ec2-executor/ec2-executor/workers"
)

// Prepare gets the job's worker, waits for its sshd and Docker, pulls the images and
// creates the job's containers. The state file is saved before the worker is asked
// for and again each time its lease gains something cleanup needs, so a driver
// killed at any point leaves enough behind for cleanup or the reaper to find it.
func (d *Driver) Prepare(ctx context.Context) error {
	job, err := ReadJob(d.Env.JobResponseFile)
	if err != nil {
		return err
	}
	instance, err := d.jobInstance()
	if err != nil {
		return err
	}
	if err := d.checkLifetime(job); err != nil {
		return err
	}
	p, err := d.planContainers(job)
	if err != nil {
		return err
	}
	key, err := d.Env.JobKey()
	if err != nil {
		return err
	}
	wj := d.workerJob(key)
	instance = d.onDemandRetry(instance, wj)
	st := State{JobKey: key, JobID: wj.ID, ProjectID: wj.ProjectID, PipelineID: wj.PipelineID, JobName: wj.Name,
		CreatedAt: d.Now().UTC(), Image: d.jobImage(job)}
	store := d.store()
	if err := store.Save(st); err != nil {
		return err
	}
	fleet, clients, err := d.fleet(ctx)
	if err != nil {
		return err
	}
	lease, err := fleet.Get(ctx, wj, instance, func(l workers.Lease) error {
		st.Lease = l
		return store.Save(st)
	})
	if err != nil {
		return err
	}
	if err := d.readyWorker(ctx, fleet, &st, job, p, clients); err != nil {
		err = fleet.Rollback(ctx, lease, err)
		// The worker is terminated (or, if that failed, cleanup terminates it): with
		// no address, cleanup does not spend seconds trying to reach it first.
		st.Address = ""
		return errors.Join(err, store.Save(st))
	}
	d.startHolder(key)
	return nil
}

// workerJob is what the job's worker is tagged with.
func (d *Driver) workerJob(key string) workers.Job {
	v := d.Env.Vars
	return workers.Job{Key: key, ID: v["CI_JOB_ID"], ProjectID: v["CI_PROJECT_ID"], PipelineID: v["CI_PIPELINE_ID"], RunnerID: v["CI_RUNNER_ID"], Name: v["CI_JOB_NAME"]}
}

// checkLifetime refuses a job that may run longer than the reaper lets a worker live.
func (d *Driver) checkLifetime(job Job) error {
	limit := d.Settings.Instance.MaxLifetime.Duration
	if timeout := time.Duration(job.Timeout) * time.Second; timeout > limit {
		return fmt.Errorf("the job's timeout (%s) is longer than instance.max_lifetime (%s), after which the reaper terminates workers: raise instance.max_lifetime in the runner's ec2-executor settings", timeout, limit)
	}
	return nil
}

// readyWorker connects to the worker and creates the job's containers.
func (d *Driver) readyWorker(ctx context.Context, fleet *workers.Fleet, st *State, job Job, p plan, c Clients) error {
	w, err := fleet.Reach(ctx, st.Lease)
	if err != nil {
		return err
	}
	defer w.Close()
	if err := d.createContainers(ctx, w, st, job, p, c); err != nil {
		return err
	}
	return d.store().Save(*st)
}
