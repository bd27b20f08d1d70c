package main

import (
	"context"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/ec2-executor/ec2-executor/migrate"
	"github.com/ec2-executor/ec2-executor/provision"
)

// migrateCommand writes ec2-executor settings and a custom-executor runner config
// from a docker+machine one.
func migrateCommand(log func() hclog.Logger, stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "turn docker+machine runners (amazonec2) of a gitlab-runner config.toml into ec2-executor settings and a custom-executor runner config",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "runner-config", Usage: "gitlab-runner's config.toml (read only)", Value: "/etc/gitlab-runner/config.toml"},
			&cli.StringFlag{Name: "runner", Usage: "only the [[runners]] entry with this name"},
			&cli.StringFlag{Name: "out", Usage: "directory for the new config.toml and one settings file per runner", Required: true},
			&cli.StringFlag{Name: "settings-dir", Usage: "where the settings files will live on the manager", Value: "/etc/ec2-executor"},
			&cli.StringFlag{Name: "binary", Usage: "ec2-executor's path on the manager", Value: "/usr/local/bin/ec2-executor"},
			&cli.BoolFlag{Name: "force", Usage: "replace files already in --out (without it migrate writes nothing when one is there)"},
			&cli.BoolFlag{Name: "resolve-security-groups", Usage: "ask EC2 (with the manager's AWS credentials) for the ids of security groups named in MachineOptions"},
		},
		Action: func(c *cli.Context) error {
			var resolve migrate.GroupResolver
			if c.Bool("resolve-security-groups") {
				resolve = groupResolver(log())
			}
			report, err := migrate.Run(c.Context, migrate.Options{RunnerConfig: c.String("runner-config"), Runner: c.String("runner"),
				Out: c.String("out"), SettingsDir: c.String("settings-dir"), Binary: c.String("binary"), Resolve: resolve, Force: c.Bool("force")})
			if err != nil {
				return err
			}
			report.Print(stdout)
			report.PrintNext(stdout, c.String("out"), c.String("settings-dir"))
			return nil
		},
	}
}

// groupResolver asks EC2 for a security group's id by name, or "" when it cannot.
func groupResolver(log hclog.Logger) migrate.GroupResolver {
	return func(ctx context.Context, region, name, vpc string) string {
		return resolveGroup(ctx, log, region, name, vpc)
	}
}

func resolveGroup(ctx context.Context, log hclog.Logger, region, name, vpc string) string {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region), awsconfig.WithLogger(provision.SDKLogger{Log: log.Named("aws")}))
	if err != nil {
		return ""
	}
	filters := []types.Filter{{Name: aws.String("group-name"), Values: []string{name}}}
	if vpc != "" {
		filters = append(filters, types.Filter{Name: aws.String("vpc-id"), Values: []string{vpc}})
	}
	out, err := ec2.NewFromConfig(cfg).DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: filters})
	if err != nil || len(out.SecurityGroups) != 1 {
		return ""
	}
	return aws.ToString(out.SecurityGroups[0].GroupId)
}
