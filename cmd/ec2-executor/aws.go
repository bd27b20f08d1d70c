package main

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/hashicorp/go-hclog"

	"github.com/ec2-executor/ec2-executor/dockerauth"
	"github.com/ec2-executor/ec2-executor/provision"
	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/stages"
)

// newAWS returns a factory for the real AWS clients with adaptive retries
// (client-side rate limiting on throttling). Credentials come from the standard chain
// (instance profile, environment, shared files). The clients are built once per
// process, on first use, and shared by every later call: loading the configuration
// reads files and the environment, and each client keeps its own connection pool
// and retry token bucket, which only help when kept.
func newAWS(s settings.Settings, log hclog.Logger) func(context.Context) (stages.Clients, error) {
	var (
		once    sync.Once
		clients stages.Clients
		err     error
	)
	return func(ctx context.Context) (stages.Clients, error) {
		once.Do(func() { clients, err = buildAWS(ctx, s, log) })
		return clients, err
	}
}

func buildAWS(ctx context.Context, s settings.Settings, log hclog.Logger) (stages.Clients, error) {
	cfg, err := provision.LoadConfig(ctx, s.AWS.Region, s.AWS.Endpoint, log)
	if err != nil {
		return stages.Clients{}, err
	}
	var (
		mu   sync.Mutex
		ecrs = map[string]*ecr.Client{}
	)
	ecrFor := func(_ context.Context, region string) (dockerauth.ECRAPI, error) {
		mu.Lock()
		defer mu.Unlock()
		if ecrs[region] == nil {
			ecrs[region] = ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.Region = region })
		}
		return ecrs[region], nil
	}
	client := ec2.NewFromConfig(cfg)
	return stages.Clients{EC2: client, SSM: ssm.NewFromConfig(cfg), ECR: ecrFor, Spot: client}, nil
}

// noCredentials replaces the SDK's account of a credential chain that found nothing
// (several lines about each provider it tried) with one line saying where
// credentials come from. Only the SDK's words tell that case apart; the test pins them.
func noCredentials(err error) error {
	if err == nil || !strings.Contains(err.Error(), "get identity: get credentials:") {
		return err
	}
	return errors.New("no AWS credentials: the AWS SDK's default chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, " +
		"AWS_PROFILE and ~/.aws files, web identity, the ECS task role, the EC2 instance profile) found none; " +
		"on EC2 give the manager an instance profile with examples/iam/manager-policy.json")
}
