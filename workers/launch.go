package workers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/ec2-executor/ec2-executor/cloudinit"
	"github.com/ec2-executor/ec2-executor/engine"
	"github.com/ec2-executor/ec2-executor/provision"
	"github.com/ec2-executor/ec2-executor/settings"
)

// Launch starts a fresh worker for job from the instance settings in (the job's
// overrides already applied) and waits until EC2 reports it running. saved is called
// each time the lease gains something cleanup needs (its keys, the instance id, the
// address), before anything else can fail, so a driver killed at any point leaves the
// instance findable. Past RunInstances, a failure terminates the instance.
func (f *Fleet) Launch(ctx context.Context, job Job, in settings.Instance, saved func(Lease) error) (Lease, error) {
	lease, spec, err := f.prepareLaunch(ctx, job, in, saved)
	if err != nil {
		return lease, err
	}
	start := f.now()
	inst, err := f.prov.Create(ctx, spec, func(i provision.Instance) error {
		lease.InstanceID = i.ID
		return saved(lease)
	})
	if err != nil {
		return lease, err
	}
	f.log.Info("Instance "+inst.ID+" ("+inst.Type+", "+inst.Market()+") running", "after", f.now().Sub(start).Round(10*time.Millisecond).String(), "private_ip", inst.PrivateIP)
	lease.Type, lease.Zone, lease.Spot = inst.Type, inst.Zone, inst.Spot
	if lease.Address, err = f.address(inst); err != nil {
		return lease, f.Rollback(ctx, lease, err)
	}
	if err := saved(lease); err != nil {
		return lease, f.Rollback(ctx, lease, err)
	}
	return lease, nil
}

// prepareLaunch makes the worker's keys and user data, saves the lease with its keys
// (before any instance exists) and builds the RunInstances spec.
func (f *Fleet) prepareLaunch(ctx context.Context, job Job, in settings.Instance, saved func(Lease) error) (Lease, provision.LaunchSpec, error) {
	keys, err := engine.NewKeys(keyComment(job.Key))
	if err != nil {
		return Lease{}, provision.LaunchSpec{}, err
	}
	userData, err := cloudinit.Render(cloudWorker(f.s.SSH.User, keys), CloudOptions(f.s))
	if err != nil {
		return Lease{}, provision.LaunchSpec{}, err
	}
	lease := Lease{SSHUser: f.s.SSH.User, ClientKey: keys.Client.Private, HostKey: keys.Host.Public, Source: SourceLaunch}
	if err := saved(lease); err != nil {
		return lease, provision.LaunchSpec{}, err
	}
	spec, err := f.launchSpec(ctx, in, job, userData)
	return lease, spec, err
}

// address is host:port of the worker's sshd, on the address ssh.address names.
func (f *Fleet) address(inst provision.Instance) (string, error) {
	host := f.sshHost(inst)
	if host == "" {
		return "", fmt.Errorf("instance %s has no %s address to reach it on (ssh.address = %q)", inst.ID, f.s.SSH.Address, f.s.SSH.Address)
	}
	return net.JoinHostPort(host, strconv.Itoa(f.s.SSH.Port)), nil
}

// Address is host:port of a worker's sshd, for a worker the caller watches itself.
func (f *Fleet) Address(inst provision.Instance) (string, error) { return f.address(inst) }

// Rollback terminates a worker whose job could not start on it and returns cause,
// joined with the termination's error if that failed too (cleanup then tries again).
func (f *Fleet) Rollback(ctx context.Context, l Lease, cause error) error {
	if l.InstanceID == "" {
		return cause
	}
	return f.prov.Rollback(ctx, l.InstanceID, cause)
}

// launchSpec turns the job's instance settings into what provision needs. The AMI is
// read from SSM here, once, so every fallback choice boots the same image.
func (f *Fleet) launchSpec(ctx context.Context, in settings.Instance, job Job, userData []byte) (provision.LaunchSpec, error) {
	ami := in.AMI
	if in.AMIParameter != "" {
		var err error
		if ami, err = provision.ResolveAMI(ctx, f.ssm, in.AMIParameter); err != nil {
			return provision.LaunchSpec{}, err
		}
		f.log.Info("Using AMI "+ami+" from SSM parameter "+in.AMIParameter, "ami", ami)
	}
	if err := f.checkArch(ctx, in, ami); err != nil {
		return provision.LaunchSpec{}, err
	}
	v := in.RootVolume
	return provision.LaunchSpec{
		AMI:              ami,
		Choices:          f.withBreakers(ctx, in, provision.Choices(in.Types, in.SubnetIDs, spotOrder(in.Market)...)),
		SecurityGroupIDs: in.SecurityGroupIDs,
		InstanceProfile:  in.IAMInstanceProfile,
		MetadataHopLimit: in.MetadataHopLimit,
		SpotMaxPrice:     in.SpotMaxPrice,
		EBSOptimized:     in.EBSOptimized,
		Monitoring:       in.DetailedMonitoring,
		PublicIP:         f.s.SSHPublic(),
		RootVolume: provision.Volume{DeviceName: v.DeviceName, SizeGiB: int32(v.SizeGiB), Type: v.Type,
			IOPS: int32(v.IOPS), Throughput: int32(v.Throughput), Encrypted: v.Encrypted, KMSKeyID: v.KMSKeyID},
		LaunchTemplate: provision.Template(in.LaunchTemplate),
		Tags:           f.tags(job, f.now()),
		UserData:       userData,
		ClientToken:    job.Key + "-" + nonce(),
	}, nil
}

// nonce makes each launch's client token its own. The job key alone is not: a
// runner without config_exec gives every prepare attempt of a job the same key,
// and an attempt's launch with the earlier attempt's token (and new keys in its
// user data) is refused as IdempotentParameterMismatch. The SDK's own retries of
// one call still share its token.
func nonce() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// spotOrder lists the markets to try: spot-or-on-demand tries every spot choice first.
func spotOrder(market string) []bool {
	switch market {
	case settings.MarketSpot:
		return []bool{true}
	case settings.MarketSpotFallback:
		return []bool{true, false}
	}
	return []bool{false}
}

// CloudOptions are the operator's [worker] settings (and in-job ECR) for cloud-init.
func CloudOptions(s settings.Settings) cloudinit.Options {
	return cloudinit.Options{Worker: s.Worker, InJobECR: s.Registry.InJobECR}
}

// keyComment names a worker's keys after its job (or the pool's batch).
func keyComment(key string) string { return "ec2-executor-" + key }

// cloudWorker is what cloud-init needs of a worker's user and keys.
func cloudWorker(user string, keys engine.Keys) cloudinit.Login {
	return cloudinit.Login{User: user, AuthorizedKey: keys.Client.Public, HostPrivateKey: keys.Host.Private, HostPublicKey: keys.Host.Public}
}

// longestKey is as long as a job key gets (a 20-digit job id, a dash and 8 hex
// digits), so a check with it measures the largest user data a launch renders.
var longestKey = strings.Repeat("9", 20) + "-" + strings.Repeat("f", 8)

// CheckWorker renders a worker's cloud-config with throwaway keys of the real size,
// so config and validate catch a bad extra part, or a document over EC2's 16 KiB
// limit, before any launch: placeholder keys are shorter than real ones.
func CheckWorker(s settings.Settings) ([]byte, error) {
	keys, err := engine.NewKeys(keyComment(longestKey))
	if err != nil {
		return nil, err
	}
	return cloudinit.Render(cloudWorker(s.SSH.User, keys), CloudOptions(s))
}

// ReviewWorker is the cloud-config a worker would get, with placeholder keys, for an
// operator to read; it fails where CheckWorker fails.
func ReviewWorker(s settings.Settings) ([]byte, error) {
	if _, err := CheckWorker(s); err != nil {
		return nil, err
	}
	return cloudinit.Render(cloudinit.Placeholder(s.SSH.User), CloudOptions(s))
}
