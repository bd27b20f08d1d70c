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
	s.Boot = &Booter{s: s, sshd: map[string]*proc{}, docker: map[string]*privateDocker{}, booted: map[string]types.Instance{}, vols: map[string][]types.Volume{}, firstSeen: map[string]time.Time{}, restarted: map[string]bool{}, failed: map[string]error{}, left: map[string][]string{}}
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopBoot, s.bootDone = cancel, make(chan struct{})
	go func() {
		defer close(s.bootDone)
		s.Boot.loop(bctx)
	}()
	return nil
}

func (b *Booter) loop(ctx context.Context) {
	defer b.shutdown()
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
	_, failed := b.failed[id]
	b.mu.Unlock()
	switch state := in.State.Name; {
	case state == types.InstanceStateNameRunning && !booted && !failed && b.due(id):
		if err := b.boot(ctx, in); err != nil {
			logf("boot simulator: %s did not boot: %v", id, err)
			b.mu.Lock()
			b.failed[id] = err
			b.mu.Unlock()
		}
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
		if err := SchemaCheck(dir, doc); err != nil {
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
	b.sshd[id] = p
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
