package stack

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
)

// CacheBucket is the S3 bucket the stack creates in moto for the runner's
// distributed cache ([runners.cache] Type "s3", ServerAddress MotoAddr).
const CacheBucket = "ec2x-ci-cache"

// RunnerS3Cache is the [runners.cache] section of a gitlab-runner config.toml that
// keeps the cache in the stack's bucket, shared by every runner, with moto at
// serverAddress (MotoAddr, or an address where nothing answers).
func RunnerS3Cache(serverAddress string) string {
	return fmt.Sprintf(`  [runners.cache]
    Type = "s3"
    Shared = true
    [runners.cache.s3]
      ServerAddress = %q
      AccessKey = "testing"
      SecretKey = "testing"
      BucketName = %q
      BucketLocation = %q
      Insecure = true
`, serverAddress, CacheBucket, Region)
}

// seedBucket creates CacheBucket with an unsigned path-style request, which moto
// takes as S3's.
func seedBucket(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, MotoURL+"/"+CacheBucket, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("creating bucket %s: %w", CacheBucket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("creating bucket %s: %s: %s", CacheBucket, resp.Status, body)
	}
	return nil
}

// CacheObjects lists the keys and sizes of the objects in CacheBucket.
func CacheObjects(ctx context.Context) (map[string]int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, MotoURL+"/"+CacheBucket+"?list-type=2", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var list struct {
		Contents []struct {
			Key  string
			Size int64
		}
	}
	if err := xml.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("listing bucket %s: %s: %w", CacheBucket, resp.Status, err)
	}
	out := map[string]int64{}
	for _, c := range list.Contents {
		out[c.Key] = c.Size
	}
	return out, nil
}
