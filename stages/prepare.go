package stages

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/ec2-executor/ec2-executor/cloudinit"
	"github.com/ec2-executor/ec2-executor/engine"
	"github.com/ec2-executor/ec2-executor/provision"
)

// Prepare launches the job's worker, waits for its sshd and Docker, pulls the job
// image and creates the build container. The state file is saved before the launch and
// again as soon as the instance id is known, so a driver killed at any point leaves
// enough behind for cleanup or the reaper to find the instance.
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
	keys, err := engine.NewKeys("ec2-executor-" + key)
	if err != nil {
		return err
	}
	userData, err := cloudinit.Render(cloudinit.Worker{User: d.Settings.SSH.User, AuthorizedKey: keys.Client.Public,
		HostPrivateKey: keys.Host.Private, HostPublicKey: keys.Host.Public}, cloudOptions(d.Settings))
	if err != nil {
		return err
	}
	st := State{JobKey: key, JobID: d.Env.Vars["CI_JOB_ID"], CreatedAt: d.Now().UTC(),
		SSHUser: d.Settings.SSH.User, ClientKey: keys.Client.Private, HostKey: keys.Host.Public, Image: d.jobImage(job)}
	store := d.store()
	if err := store.Save(st); err != nil {
		return err
	}
	prov, clients, err := d.provisioner(ctx)
	if err != nil {
		return err
	}
	inst, err := d.launch(ctx, prov, clients, instance, &st, userData)
	if err != nil {
		return err
	}
	if err := d.readyWorker(ctx, &st, inst, job, p, clients); err != nil {
		err = prov.Rollback(ctx, inst.ID, err)
		// The worker is terminated (or, if that failed, cleanup terminates it): with
		// no address, cleanup does not spend seconds trying to reach it first.
		st.Address = ""
		return errors.Join(err, d.store().Save(st))
	}
	return nil
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
func (d *Driver) readyWorker(ctx context.Context, st *State, inst provision.Instance, job Job, p plan, c Clients) error {
	host := d.sshHost(inst)
	if host == "" {
		return fmt.Errorf("instance %s has no %s address to reach it on (ssh.address = %q)", inst.ID, d.Settings.SSH.Address, d.Settings.SSH.Address)
	}
	st.Address = net.JoinHostPort(host, strconv.Itoa(d.Settings.SSH.Port))
	if err := d.store().Save(*st); err != nil {
		return err
	}
	start := d.Now()
	w, err := engine.Connect(ctx, d.target(*st, d.Settings.SSH.ConnectTimeout.Duration), d.Log)
	if err != nil {
		return fmt.Errorf("waiting for instance %s: %w", inst.ID, err)
	}
	defer w.Close()
	d.Log.Info("Instance "+inst.ID+" answers over SSH and Docker", "after", d.Now().Sub(start).Round(10*time.Millisecond).String())
	if err := d.createContainers(ctx, w, st, job, p, c); err != nil {
		return err
	}
	return d.store().Save(*st)
}

// sshHost is the worker's address the driver reaches it on: private, or public when
// ssh.address says so.
func (d *Driver) sshHost(inst provision.Instance) string {
	if d.Settings.SSHPublic() {
		return inst.PublicIP
	}
	return inst.PrivateIP
}

// target says how to reach the job's worker; deadline bounds the wait for it.
func (d *Driver) target(st State, deadline time.Duration) engine.Target {
	return engine.Target{Addr: st.Address, User: st.SSHUser, ClientKey: st.ClientKey, HostKey: st.HostKey,
		Deadline: deadline, RetryInterval: d.Settings.SSH.RetryInterval.Duration}
}
