package provision

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// HeartbeatPath holds one SSM parameter per runner manager whose pool runs: its
// value is when the pool last said it was alive.
const HeartbeatPath = "/ec2-executor/heartbeat/"

// Beat records that manager is alive at at.
func Beat(ctx context.Context, api SSMAPI, manager string, at time.Time) error {
	_, err := api.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(HeartbeatPath + manager),
		Value: aws.String(at.UTC().Format(time.RFC3339)), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true)})
	if err != nil {
		return fmt.Errorf("renewing the heartbeat of manager %s: %w", manager, err)
	}
	return nil
}

// Heartbeats returns every manager's last heartbeat.
func Heartbeats(ctx context.Context, api SSMAPI) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	pages := ssm.NewGetParametersByPathPaginator(api, &ssm.GetParametersByPathInput{Path: aws.String(strings.TrimSuffix(HeartbeatPath, "/"))})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading managers' heartbeats: %w", err)
		}
		for _, p := range page.Parameters {
			at, err := time.Parse(time.RFC3339, aws.ToString(p.Value))
			if err != nil {
				continue // not ours to judge
			}
			out[strings.TrimPrefix(aws.ToString(p.Name), HeartbeatPath)] = at
		}
	}
	return out, nil
}
