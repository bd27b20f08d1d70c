package workers

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ec2-executor/ec2-executor/provision/provisiontest"
	"github.com/ec2-executor/ec2-executor/settings"
)

func reclaim(t *testing.T, dir string, in Interruption) {
	t.Helper()
	if err := RecordInterruption(dir, in); err != nil {
		t.Fatal(err)
	}
}

func TestTheBreakerOpensAtTheLimitWithinTheWindowAndClosesAfterTheCooldown(t *testing.T) {
	at := func(min int) time.Time { return now.Add(time.Duration(min) * time.Minute) }
	ins := []Interruption{
		{At: at(0), InstanceID: "i-1", Type: "c6i.large", Zone: "us-east-1a"},
		{At: at(40), InstanceID: "i-2", Type: "c6i.large", Zone: "us-east-1a"},
		{At: at(50), InstanceID: "i-3", Type: "c6i.large", Zone: "us-east-1a"},
		{At: at(55), InstanceID: "i-4", Type: "c6i.large", Zone: "us-east-1b"},
		{At: at(56), InstanceID: "i-5", Type: "c5.large", Zone: "us-east-1a"},
	}
	window, cooldown := 30*time.Minute, time.Hour
	if open := OpenBreakers(ins[:2], 2, window, cooldown, at(41)); len(open) != 0 {
		t.Fatalf("two reclaims 40 minutes apart opened %v", open)
	}
	open := OpenBreakers(ins, 2, window, cooldown, at(51))
	if len(open) != 1 || open[0].Type != "c6i.large" || open[0].Zone != "us-east-1a" || !open[0].Until.Equal(at(110)) {
		t.Fatalf("open %+v", open)
	}
	if open := OpenBreakers(ins, 2, window, cooldown, at(110)); len(open) != 0 {
		t.Fatalf("still open after the cooldown: %v", open)
	}
	if open := OpenBreakers(ins, 0, window, cooldown, at(51)); open != nil {
		t.Fatalf("limit 0 opened %v", open)
	}
}

func TestTheRecordCountsAWorkerOnceAndSkipsATornLine(t *testing.T) {
	dir := t.TempDir()
	in := Interruption{At: now, InstanceID: "i-1", Type: "c6i.large", Zone: "us-east-1a"}
	reclaim(t, dir, in)
	reclaim(t, dir, in) // the holder's notice and the stage's finding
	f, err := os.OpenFile(InterruptionsPath(dir), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString(`{"at": "2026-11-22T12:`)
	f.Close()
	got, err := Interruptions(dir, now.Add(-time.Minute))
	if err != nil || len(got) != 1 {
		t.Fatalf("%v, %v", got, err)
	}
	if got, _ := Interruptions(dir, now.Add(time.Minute)); len(got) != 0 {
		t.Fatalf("older reclaims read: %v", got)
	}
}

func TestARetryIsKnownByProjectPipelineAndName(t *testing.T) {
	ins := []Interruption{{InstanceID: "i-1", ProjectID: "7", PipelineID: "99", JobName: "build", JobID: "1001"}}
	for _, c := range []struct {
		job  Job
		want bool
	}{
		{Job{ID: "1002", ProjectID: "7", PipelineID: "99", Name: "build"}, true},
		{Job{ID: "1001", ProjectID: "7", PipelineID: "99", Name: "build"}, false}, // the same attempt
		{Job{ID: "1003", ProjectID: "7", PipelineID: "99", Name: "test"}, false},
		{Job{ID: "1004", ProjectID: "7", PipelineID: "100", Name: "build"}, false},
		{Job{ID: "1005", ProjectID: "7", Name: "build"}, false},
	} {
		if _, got := EarlierAttempt(ins, c.job); got != c.want {
			t.Errorf("%+v: earlier attempt %v, want %v", c.job, got, c.want)
		}
	}
}

func TestAnOpenBreakerTurnsItsSpotChoicesOnDemand(t *testing.T) {
	f := provisiontest.New()
	f.SubnetZone = "us-east-1a"
	fl := testFleet(t, f)
	in := fl.s.Instance
	in.Market = settings.MarketSpot
	in.SpotInterruptionsLimit = 2
	for i, id := range []string{"i-1", "i-2"} {
		reclaim(t, fl.s.StateDir, Interruption{At: now.Add(time.Duration(i-5) * time.Minute), InstanceID: id, Type: "c6i.large", Zone: "us-east-1a"})
	}
	spec, err := fl.launchSpec(t.Context(), in, Job{Key: "42-abcd"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range spec.Choices {
		got = append(got, c.String())
	}
	want := "c6i.large in subnet-0123456789abcdef0 (on-demand),c5.large in subnet-0123456789abcdef0 (spot)"
	if strings.Join(got, ",") != want {
		t.Fatalf("choices %v", got)
	}
	f.SubnetZone = "us-east-1b"
	spec, _ = fl.launchSpec(t.Context(), in, Job{Key: "43-abcd"}, nil)
	if !spec.Choices[0].Spot {
		t.Fatalf("a breaker of us-east-1a covered a subnet in us-east-1b: %v", spec.Choices)
	}
}
