package provision

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/logging"
	"github.com/hashicorp/go-hclog"
)

// LoadConfig is the AWS configuration every ec2-executor process uses: credentials
// from the SDK's default chain, adaptive retries (client-side rate limiting once EC2
// throttles), and the SDK's own log lines in hclog at debug. endpoint, when set,
// replaces AWS's (a proxy, or moto in tests).
func LoadConfig(ctx context.Context, region, endpoint string, log hclog.Logger) (aws.Config, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region),
		awsconfig.WithRetryMode(aws.RetryModeAdaptive),
		awsconfig.WithLogger(SDKLogger{log.Named("aws")}))
	if err != nil {
		return cfg, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if endpoint != "" {
		cfg.BaseEndpoint = aws.String(endpoint)
	}
	return cfg, nil
}

// SDKLogger puts the SDK's own log lines (retries, a response body it could not
// drain) into hclog at debug level. Without it the SDK writes them raw to stderr,
// which the runner copies into the user's job log.
type SDKLogger struct{ Log hclog.Logger }

func (l SDKLogger) Logf(class logging.Classification, format string, v ...any) {
	l.Log.Debug("AWS SDK", "class", string(class), "message", fmt.Sprintf(format, v...))
}
