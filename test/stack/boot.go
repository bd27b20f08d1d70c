package stack

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-executor/ec2-executor/cloudinit"
	"github.com/ec2-executor/ec2-executor/workers"
)

// Booter "boots" every instance moto reports running: it validates the instance's user
// data with cloud-init, creates its SSH user and starts a real sshd on its private IP
// with the host key and authorized key from that user data. It stops the sshd when
// the instance is terminated.
type Booter struct {
	s      *Stack
	mu     sync.Mutex
	sshd   map[string]*proc
	docker map[string]*privateDocker
	booted map[string]types.Instance // as moto described it when it booted (running)
	vols   map[string][]types.Volume // its volumes then (moto deletes them on termination)
	failed map[string]error
	left   map[string][]string // job key → objects its terminated worker held
	users  []string
	// booting holds the instances whose boot is under way: boots run side by side,
	// as EC2 boots a burst's instances, at most maxBooting at once.
	booting map[string]bool
	real    map[string]*realWorker // the instances that boot for real (realboot.go)
	slots   chan struct{}
	boots   sync.WaitGroup
	userMu  sync.Mutex // useradd takes /etc/passwd's lock: one at a time
	// Fault knobs for the fault suite (see SetBootDelay, SetWrongHostKey).
	delay time.Duration
	// startDelay replaces delay for an instance started again after a stop.
	startDelay time.Duration
	restarted  map[string]bool
	firstSeen  map[string]time.Time
	wrongKey   bool
}

// SetBootDelay makes instances wait d after reaching running before their sshd
// starts, as a slow boot would.
func (b *Booter) SetBootDelay(d time.Duration) {
	b.mu.Lock()
	b.delay = d
	b.mu.Unlock()
}

// SetStartDelay makes instances started again after a stop wait d before their
// sshd starts, as a start takes on EC2.
func (b *Booter) SetStartDelay(d time.Duration) {
	b.mu.Lock()
	b.startDelay = d
	b.mu.Unlock()
}

// SetWrongHostKey makes instances boot with a host key other than the one in their
// user data, as a man in the middle would present.
func (b *Booter) SetWrongHostKey(on bool) {
	b.mu.Lock()
	b.wrongKey = on
	b.mu.Unlock()
}

// StopSSHD stops a booted instance's sshd while the instance keeps running, as a
// dropped network path would look to the driver.
func (b *Booter) StopSSHD(id string) {
	b.mu.Lock()
	p := b.sshd[id]
	b.mu.Unlock()
	if p != nil {
		p.stopTree()
	}
}

// StopDockerd kills the dockerd of a worker booted with its own (its daemon going
// away under a job).
func (b *Booter) StopDockerd(id string) bool {
	b.mu.Lock()
	pd := b.docker[id]
	b.mu.Unlock()
	if pd == nil || pd.dockerd == nil {
		return false
	}
	// Only the daemon dies; containerd and the containers live on, as they would. The
	// worker's termination stops them (they are remembered now, before they are
	// reparented).
	pd.orphans = descendants(pd.dockerd.cmd.Process.Pid)
	_ = pd.dockerd.cmd.Process.Kill()
	<-pd.dockerd.done
	return true
}

// due reports whether a running instance may boot now, given the boot delay.
func (b *Booter) due(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.firstSeen[id]; !ok {
		b.firstSeen[id] = time.Now()
	}
	delay := b.delay
	if b.restarted[id] {
		delay = b.startDelay
	}
	return time.Since(b.firstSeen[id]) >= delay
}

func (s *Stack) startBoot(ctx context.Context) error {
	// The played workers share this machine's disk: the readiness marker their
	// cloud-init would write is written once, here (really booting workers write
	// their own).
	if err := os.MkdirAll(cloudinit.WorkerStateDir, 0o755); err != nil {
		return err
	}
	_ = os.Remove(cloudinit.FailedFile)
	if err := os.WriteFile(cloudinit.ReadyFile, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return err
	}
	s.Boot = &Booter{s: s, sshd: map[string]*proc{}, docker: map[string]*privateDocker{}, booted: map[string]types.Instance{}, vols: map[string][]types.Volume{}, firstSeen: map[string]time.Time{}, restarted: map[string]bool{}, failed: map[string]error{}, left: map[string][]string{},
		booting: map[string]bool{}, real: map[string]*realWorker{}, slots: make(chan struct{}, maxBooting)}
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopBoot, s.bootDone = cancel, make(chan struct{})
	go func() {
		defer close(s.bootDone)
		s.Boot.loop(bctx)
	}()
	return nil
}

// maxBooting bounds the boots under way at once: enough that a burst of workers
// boots together (a serial boot made sshds come up after ssh.connect_timeout, a
// limit AWS does not have), few enough for two cores.
const maxBooting = 16

func (b *Booter) loop(ctx context.Context) {
	defer b.shutdown()
	defer b.boots.Wait()
	for {
		if err := b.sync(ctx); err != nil && ctx.Err() == nil {
			logf("boot simulator: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Failures returns the instances that could not boot and why.
func (b *Booter) Failures() map[string]error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.failed)
}

func (b *Booter) sync(ctx context.Context) error {
	pages := ec2.NewDescribeInstancesPaginator(b.s.ec2, &ec2.DescribeInstancesInput{})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				b.reconcile(ctx, in)
			}
		}
	}
	return nil
}

func (b *Booter) reconcile(ctx context.Context, in types.Instance) {
	id := aws.ToString(in.InstanceId)
	b.mu.Lock()
	p, booted := b.sshd[id]
	rw, real := b.real[id]
	_, failed := b.failed[id]
	b.mu.Unlock()
	if real {
		b.reconcileReal(in, rw)
		return
	}
	switch state := in.State.Name; {
	case state == types.InstanceStateNameRunning && !booted && !failed && b.due(id):
		b.startBooting(ctx, in)
	case (state == types.InstanceStateNameStopped || state == types.InstanceStateNameStopping) && booted && p != nil:
		// A stopped worker keeps its disk and keys; it boots again when started.
		p.stopTree()
		b.mu.Lock()
		delete(b.sshd, id)
		delete(b.firstSeen, id)
		b.restarted[id] = true
		pd := b.docker[id]
		delete(b.docker, id)
		b.mu.Unlock()
		if pd != nil {
			pd.stop()
		}
	case (state == types.InstanceStateNameTerminated || state == types.InstanceStateNameShuttingDown) && booted && p != nil:
		p.stopTree() // connections die with the machine
		b.mu.Lock()
		b.sshd[id] = nil
		pd := b.docker[id]
		b.mu.Unlock()
		if pd != nil {
			pd.stop()
		} else if key := tag(in, workers.TagJobKey); key == "" {
			logf("boot simulator: %s has no %s tag", id, workers.TagJobKey)
		} else if err := wipeJob(ctx, key, func(names []string) { b.noteLeft(key, names) }); err != nil {
			logf("boot simulator: wiping what %s left: %v", id, err)
		}
	}
}

// reconcileReal powers a really booting worker off when its instance stops or
// terminates; a stopped one boots afresh if started again.
func (b *Booter) reconcileReal(in types.Instance, rw *realWorker) {
	id := aws.ToString(in.InstanceId)
	switch in.State.Name {
	case types.InstanceStateNameRunning, types.InstanceStateNamePending:
		return
	case types.InstanceStateNameStopped, types.InstanceStateNameStopping:
		b.mu.Lock()
		delete(b.real, id)
		delete(b.firstSeen, id)
		b.mu.Unlock()
	default:
		b.mu.Lock()
		b.real[id] = nil // terminated: never booted again
		b.mu.Unlock()
	}
	if rw != nil {
		rw.stop()
	}
}

// startBooting boots the instance in the background, unless its boot is under way.
func (b *Booter) startBooting(ctx context.Context, in types.Instance) {
	id := aws.ToString(in.InstanceId)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.booting[id] {
		return
	}
	b.booting[id] = true
	b.boots.Go(func() {
		select {
		case b.slots <- struct{}{}:
		case <-ctx.Done():
		}
		err := ctx.Err()
		if err == nil {
			err = b.boot(ctx, in)
			<-b.slots
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.booting, id)
		if err != nil && ctx.Err() == nil {
			logf("boot simulator: %s did not boot: %v", id, err)
			b.failed[id] = err
		}
	})
}

// noteLeft remembers what a terminated worker still had on the shared dockerd.
func (b *Booter) noteLeft(jobKey string, names []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.left[jobKey] = names
}

// LeftBehind names the Docker objects a job's worker still held when it was
// terminated: what the driver did not remove itself.
func (b *Booter) LeftBehind(jobKey string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.left[jobKey]
}

func (b *Booter) boot(ctx context.Context, in types.Instance) error {
	id, ip := aws.ToString(in.InstanceId), aws.ToString(in.PrivateIpAddress)
	if !strings.HasPrefix(ip, "127.") {
		return fmt.Errorf("refusing: private IP %q is not loopback", ip)
	}
	attr, err := b.s.ec2.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: in.InstanceId, Attribute: types.InstanceAttributeNameUserData})
	if err != nil {
		return err
	}
	userData, err := base64.StdEncoding.DecodeString(aws.ToString(attr.UserData.Value))
	if err != nil {
		return fmt.Errorf("user data is not base64: %w", err)
	}
	dir := filepath.Join(b.s.Dir, "boot", id)
	// Traversable so sshd can read authorized_keys as the user, as on a worker.
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return err
	}
	docs, err := cloudConfigFor(userData, int(aws.ToInt32(in.AmiLaunchIndex)))
	if err != nil {
		return err
	}
	for _, doc := range docs {
		if err := schemaCheckShape(dir, doc); err != nil {
			return err
		}
	}
	merged, err := mergeCloudConfigs(docs)
	if err != nil {
		return err
	}
	wc, err := parseWorkerConfig(merged)
	if err != nil {
		return err
	}
	if ami, ok := realAMIs[aws.ToString(in.ImageId)]; ok {
		rw, err := b.bootReal(ctx, id, ip, ami, userData)
		b.mu.Lock()
		b.real[id] = rw
		b.mu.Unlock()
		if err != nil {
			return fmt.Errorf("booting for real: %w", err)
		}
		return b.describeBooted(ctx, in)
	}
	if err := b.ensureUser(wc); err != nil {
		return err
	}
	var wrapper []string
	if wc.Files[cloudinit.DaemonFragmentPath] != "" {
		pd, err := b.startPrivateDocker(ctx, dir, id, wc)
		b.mu.Lock()
		b.docker[id] = pd
		b.mu.Unlock()
		if err != nil {
			return fmt.Errorf("starting the worker's own dockerd: %w", err)
		}
		wrapper = pd.sshdWrapper()
	}
	p, err := b.startSSHD(dir, id, ip, wc, wrapper)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.sshd[id] = p
	b.mu.Unlock()
	return b.describeBooted(ctx, in)
}

// describeBooted keeps the instance and its volumes as moto describes them now that
// it runs (moto forgets some of it on termination).
func (b *Booter) describeBooted(ctx context.Context, in types.Instance) error {
	id := aws.ToString(in.InstanceId)
	// The snapshot comes from a describe of this one instance, the call the driver makes.
	one, err := b.s.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil || len(one.Reservations) != 1 || len(one.Reservations[0].Instances) != 1 {
		return fmt.Errorf("describing %s after boot: %v", id, err)
	}
	in = one.Reservations[0].Instances[0]
	vols, err := b.s.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: []string{id}}}})
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.booted[id] = in
	b.vols[id] = vols.Volumes
	b.mu.Unlock()
	return nil
}

// Volumes returns the instance's volumes as moto described them when it booted.
func (b *Booter) Volumes(id string) []types.Volume {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.vols[id]
}

// PrivateDocker returns, for a worker booted with its own dockerd, the daemon.json
// its merge script produced and its mirror's log.
func (b *Booter) PrivateDocker(id string) (daemonJSON []byte, mirrorLog string, ok bool) {
	b.mu.Lock()
	pd := b.docker[id]
	b.mu.Unlock()
	if pd == nil {
		return nil, "", false
	}
	log, _ := os.ReadFile(filepath.Join(b.s.Dir, "logs", pd.ns+"-mirror.log"))
	return pd.daemonJSON, string(log), true
}

// PrivateDockerHost is the Docker host address of a worker booted with its own
// dockerd, or "" for a worker on the shared one.
func (b *Booter) PrivateDockerHost(id string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if pd := b.docker[id]; pd != nil {
		return "unix://" + pd.sock
	}
	return ""
}

// Booted returns the instance as moto described it while running, when it booted
// (moto drops some fields, such as the instance profile, on termination).
func (b *Booter) Booted(id string) (types.Instance, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	in, ok := b.booted[id]
	return in, ok
}

func (b *Booter) shutdown() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, p := range b.sshd {
		if p != nil {
			p.stop(5 * time.Second)
		}
		delete(b.sshd, id)
	}
	for id, pd := range b.docker {
		pd.stop()
		delete(b.docker, id)
	}
	for id, rw := range b.real {
		if rw != nil {
			rw.stop()
		}
		delete(b.real, id)
	}
	_ = os.RemoveAll(cloudinit.WorkerStateDir)
	for _, u := range b.users {
		_ = exec.Command("userdel", u).Run()
	}
	b.users = nil
}

// tag returns the value of an instance's tag, or "".
func tag(in types.Instance, key string) string {
	for _, t := range in.Tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}
