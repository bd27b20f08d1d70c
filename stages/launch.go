package stages

import (
	"context"
	"time"

	"github.com/ec2-executor/ec2-executor/cloudinit"
	"github.com/ec2-executor/ec2-executor/provision"
	"github.com/ec2-executor/ec2-executor/settings"
)

// launch starts the job's worker from the first choice with capacity and records its
// id in the state as soon as EC2 returns it.
func (d *Driver) launch(ctx context.Context, prov *provision.Provisioner, c Clients, in settings.Instance, st *State, userData []byte) (provision.Instance, error) {
	spec, err := d.launchSpec(ctx, c, in, st.JobKey, userData)
	if err != nil {
		return provision.Instance{}, err
	}
	start := d.Now()
	inst, err := prov.Create(ctx, spec, func(i provision.Instance) error {
		st.InstanceID = i.ID
		return d.store().Save(*st)
	})
	if err != nil {
		return inst, err
	}
	d.Log.Info("Instance "+inst.ID+" ("+inst.Type+", "+inst.Market()+") running", "after", d.Now().Sub(start).Round(10*time.Millisecond).String(), "private_ip", inst.PrivateIP)
	return inst, nil
}

// launchSpec turns the job's instance settings into what provision needs. The AMI is
// read from SSM here, once, so every fallback choice boots the same image.
func (d *Driver) launchSpec(ctx context.Context, c Clients, in settings.Instance, key string, userData []byte) (provision.LaunchSpec, error) {
	ami := in.AMI
	if in.AMIParameter != "" {
		var err error
		if ami, err = provision.ResolveAMI(ctx, c.SSM, in.AMIParameter); err != nil {
			return provision.LaunchSpec{}, err
		}
		d.Log.Info("Using AMI "+ami+" from SSM parameter "+in.AMIParameter, "ami", ami)
	}
	v := in.RootVolume
	return provision.LaunchSpec{
		AMI:              ami,
		Choices:          provision.Choices(in.Types, in.SubnetIDs, spotOrder(in.Market)...),
		SecurityGroupIDs: in.SecurityGroupIDs,
		InstanceProfile:  in.IAMInstanceProfile,
		MetadataHopLimit: in.MetadataHopLimit,
		SpotMaxPrice:     in.SpotMaxPrice,
		EBSOptimized:     in.EBSOptimized,
		Monitoring:       in.DetailedMonitoring,
		PublicIP:         d.Settings.SSHPublic(),
		RootVolume: provision.Volume{DeviceName: v.DeviceName, SizeGiB: int32(v.SizeGiB), Type: v.Type,
			IOPS: int32(v.IOPS), Throughput: int32(v.Throughput), Encrypted: v.Encrypted, KMSKeyID: v.KMSKeyID},
		LaunchTemplate: provision.Template(in.LaunchTemplate),
		Tags:           d.instanceTags(key, d.Now()),
		UserData:       userData,
		ClientToken:    key,
	}, nil
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

// cloudOptions maps the [worker] settings (and in-job ECR) onto cloud-init's options.
func cloudOptions(s settings.Settings) cloudinit.Options {
	w := s.Worker
	files := make([]cloudinit.File, 0, len(w.WriteFiles))
	for _, f := range w.WriteFiles {
		files = append(files, cloudinit.File{Path: f.Path, Content: f.Content, Owner: f.Owner, Permissions: f.Permissions})
	}
	return cloudinit.Options{ECRCredentialHelper: w.ECRCredentialHelper, ECRRegistries: w.ECRRegistries,
		ECRCredsStore: w.ECRCredsStore, RegistryMirrors: w.RegistryMirrors, InsecureRegistries: w.InsecureRegistries,
		DaemonOptions: w.DaemonOptions, Packages: w.Packages, Runcmd: w.Runcmd, WriteFiles: files,
		ExtraCloudConfig: w.ExtraCloudConfig, InJobECR: s.Registry.InJobECR}
}

// CheckWorker renders a worker's cloud-config with placeholder keys, so config and
// validate catch a bad extra part or an oversized document before any launch.
func CheckWorker(s settings.Settings) ([]byte, error) {
	return cloudinit.Render(cloudinit.Placeholder(s.SSH.User), cloudOptions(s))
}
