package prices

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

type fakeSpot struct{ calls int }

func (f *fakeSpot) DescribeSpotPriceHistory(_ context.Context, in *ec2.DescribeSpotPriceHistoryInput, _ ...func(*ec2.Options)) (*ec2.DescribeSpotPriceHistoryOutput, error) {
	f.calls++
	zone := aws.ToString(in.AvailabilityZone)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	return &ec2.DescribeSpotPriceHistoryOutput{SpotPriceHistory: []types.SpotPrice{
		{AvailabilityZone: aws.String(zone), ProductDescription: "Linux/UNIX", SpotPrice: aws.String("0.0300"), Timestamp: aws.Time(t0)},
		{AvailabilityZone: aws.String(zone), ProductDescription: "Linux/UNIX", SpotPrice: aws.String("0.0250"), Timestamp: aws.Time(t0.Add(time.Hour))},
		{AvailabilityZone: aws.String(zone), ProductDescription: "Windows", SpotPrice: aws.String("0.9"), Timestamp: aws.Time(t0.Add(2 * time.Hour))},
	}}, nil
}

func TestOnDemandKnowsTheTableAndSaysWhenItDoesNot(t *testing.T) {
	if p, err := OnDemand("us-east-1", "t3.micro"); err != nil || p != 0.0104 {
		t.Fatalf("t3.micro in us-east-1: %v, %v", p, err)
	}
	if _, err := OnDemand("us-east-1", "x9.huge"); err == nil || !strings.Contains(err.Error(), "no on-demand price for x9.huge in us-east-1") {
		t.Fatalf("an unknown type: %v", err)
	}
}

// The newest Linux price is used, asked once per type and zone an hour, by every
// process sharing the cache.
func TestSpotPricesAreCachedForAnHour(t *testing.T) {
	api := &fakeSpot{}
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	b := &Book{API: api, Dir: dir, Now: func() time.Time { return now }}
	for range 2 {
		p, src, err := b.Hourly(context.Background(), "", "eu-west-1a", "t3.large", true)
		if err != nil || p != 0.025 || src != "EC2 spot price history" {
			t.Fatalf("got %v from %q, %v", p, src, err)
		}
	}
	other := &Book{API: api, Dir: dir, Now: func() time.Time { return now.Add(30 * time.Minute) }} // another process
	if _, _, err := other.Hourly(context.Background(), "", "eu-west-1a", "t3.large", true); err != nil || api.calls != 1 {
		t.Fatalf("%d calls, %v", api.calls, err)
	}
	later := &Book{API: api, Dir: dir, Now: func() time.Time { return now.Add(2 * time.Hour) }}
	if _, _, err := later.Hourly(context.Background(), "", "eu-west-1a", "t3.large", true); err != nil || api.calls != 2 {
		t.Fatalf("after an hour: %d calls, %v", api.calls, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "spot-prices.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache: %v %v", fi, err)
	}
}

func TestRegionOfAZone(t *testing.T) {
	for zone, want := range map[string]string{"eu-west-1a": "eu-west-1", "us-east-1f": "us-east-1", "": "fallback", "us-west-2-lax-1a": "fallback"} {
		if got := regionOf(zone, "fallback"); got != want {
			t.Errorf("regionOf(%q) = %q, want %q", zone, got, want)
		}
	}
}

// The record sums by project and pipeline from a time on, keeps unknown prices
// apart, and reads past a last line a crash cut short.
func TestTheRecordSumsByProjectAndPipeline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "costs.jsonl")
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	d := func(v float64) *float64 { return &v }
	for _, j := range []Job{
		{At: now.Add(-10 * 24 * time.Hour), Project: "a", Pipeline: "1", Seconds: 60, Dollars: d(5)}, // too old
		{At: now.Add(-time.Hour), Project: "a", Pipeline: "2", Seconds: 60, Dollars: d(0.5)},
		{At: now.Add(-time.Hour), Project: "a", Pipeline: "2", Seconds: 30, Dollars: d(0.25)},
		{At: now.Add(-time.Hour), Project: "b", Pipeline: "3", Seconds: 90},
	} {
		if err := Append(path, j); err != nil {
			t.Fatal(err)
		}
	}
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString(`{"at":"2026-12-03T11:59`)
	f.Close()
	got, err := Sum(path, now.Add(-7*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Project != "a" || got[0].Jobs != 2 || got[0].Dollars != 0.75 || got[0].Seconds != 90 ||
		got[1].Project != "b" || got[1].Unknown != 1 || got[1].Dollars != 0 {
		t.Fatalf("totals %+v", got)
	}
}

func TestDollarsShowsFractionsOfACent(t *testing.T) {
	for v, want := range map[float64]string{0: "$0.0000", 0.0000144: "$0.000014", 0.0034: "$0.003400", 1.23456: "$1.2346"} {
		if got := Dollars(v); got != want {
			t.Errorf("Dollars(%v) = %s, want %s", v, got, want)
		}
	}
}
