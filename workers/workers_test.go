package workers

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ec2-executor/ec2-executor/cloudinit"
	"github.com/ec2-executor/ec2-executor/provision/provisiontest"
	"github.com/ec2-executor/ec2-executor/settings"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func testFleet(t *testing.T, f *provisiontest.FakeEC2) *Fleet {
	s := settings.Default()
	s.ManagerID = "m1"
	s.StateDir = t.TempDir()
	s.Instance.AMI = "ami-0123456789abcdef0"
	s.Instance.Types = []string{"c6i.large", "c5.large"}
	s.Instance.SubnetIDs = []string{"subnet-0123456789abcdef0"}
	return New(s, Clients{EC2: f, SSM: provisiontest.NewSSM()}, hclog.NewNullLogger(), func() time.Time { return now })
}

// states is a Leases over a map of job key to instance id.
func states(m map[string]string) Leases {
	return func(key string) (string, error) {
		id, ok := m[key]
		if !ok {
			return "", ErrNoJobState
		}
		return id, nil
	}
}

func TestLaunchSpecOrdersSpotBeforeOnDemandAndTagsExpiry(t *testing.T) {
	fl := testFleet(t, provisiontest.New())
	in := fl.s.Instance
	in.Market = settings.MarketSpotFallback
	spec, err := fl.launchSpec(t.Context(), in, Job{Key: "42-abcd", ID: "42"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range spec.Choices {
		got = append(got, c.String())
	}
	want := "c6i.large in subnet-0123456789abcdef0 (spot),c5.large in subnet-0123456789abcdef0 (spot),c6i.large in subnet-0123456789abcdef0 (on-demand),c5.large in subnet-0123456789abcdef0 (on-demand)"
	if strings.Join(got, ",") != want {
		t.Fatalf("choices %v", got)
	}
	if spec.Tags[TagExpiresAt] != "2026-11-22T18:00:00Z" || spec.Tags[TagManager] != "m1" || spec.Tags[TagJobKey] != "42-abcd" ||
		spec.Tags[TagJobID] != "42" || !strings.HasPrefix(spec.ClientToken, "42-abcd-") || len(spec.ClientToken) != len("42-abcd-")+8 {
		t.Fatalf("tags %v, token %q", spec.Tags, spec.ClientToken)
	}
	if _, ok := spec.Tags[TagProjectID]; ok {
		t.Errorf("an empty project id became a tag: %v", spec.Tags)
	}
}

func TestLaunchSavesTheLeaseAtEachStep(t *testing.T) {
	f := provisiontest.New()
	fl := testFleet(t, f)
	var saved []Lease
	lease, err := fl.Launch(t.Context(), Job{Key: "42-abcd"}, fl.s.Instance, func(l Lease) error {
		saved = append(saved, l)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(saved) != 3 || saved[0].InstanceID != "" || saved[0].ClientKey == "" || saved[1].InstanceID == "" || saved[1].Address != "" {
		t.Fatalf("saves %+v", saved)
	}
	if lease != saved[2] || lease.Source != SourceLaunch || !strings.HasSuffix(lease.Address, ":22") {
		t.Fatalf("lease %+v", lease)
	}
	failing := errors.New("disk full")
	_, err = fl.Launch(t.Context(), Job{Key: "43-abcd"}, fl.s.Instance, func(l Lease) error {
		if l.Address != "" {
			return failing
		}
		return nil
	})
	if !errors.Is(err, failing) {
		t.Fatalf("got %v", err)
	}
	f.AssertRunning(t, lease.InstanceID) // the second launch was rolled back
}

// launch puts one worker into the fake with the fleet's tags as of at.
func launch(t *testing.T, fl *Fleet, f *provisiontest.FakeEC2, key, manager string, at time.Time) string {
	tags := fl.tags(Job{Key: key}, at)
	tags[TagManager] = manager
	return f.Launched(t, tags)
}

func TestReleaseTerminatesEveryInstanceOfTheJob(t *testing.T) {
	f := provisiontest.New()
	fl := testFleet(t, f)
	launch(t, fl, f, "42-abcd", "m1", now) // a duplicate the lease does not name
	leased := launch(t, fl, f, "42-abcd", "m1", now)
	otherJob := launch(t, fl, f, "43-abcd", "m1", now)
	otherManager := launch(t, fl, f, "42-abcd", "m2", now)
	describes := f.Calls["DescribeInstances"]
	if err := fl.Release(t.Context(), "42-abcd", Lease{InstanceID: leased}); err != nil {
		t.Fatal(err)
	}
	f.AssertRunning(t, otherJob, otherManager)
	if f.Calls["DescribeInstances"]-describes != 1 || f.Calls["TerminateInstances"] != 2 {
		t.Errorf("calls %v, want one filtered DescribeInstances", f.Calls)
	}
}

func TestReapTerminatesOrphansAndExpiredOnly(t *testing.T) {
	f := provisiontest.New()
	fl := testFleet(t, f)
	live := launch(t, fl, f, "1-live", "m1", now.Add(-time.Hour))
	noState := launch(t, fl, f, "2-gone", "m1", now.Add(-time.Hour))
	young := launch(t, fl, f, "3-young", "m1", now.Add(-time.Minute))
	noID := launch(t, fl, f, "4-killed", "m1", now.Add(-time.Hour))
	expired := launch(t, fl, f, "5-old", "m1", now.Add(-7*time.Hour))
	otherLive := launch(t, fl, f, "6-other", "m2", now.Add(-time.Hour))
	otherOld := launch(t, fl, f, "7-other-old", "m2", now.Add(-7*time.Hour))
	held := states(map[string]string{"1-live": live, "4-killed": "", "5-old": expired})

	var dry strings.Builder
	dry.WriteString(reap(t, fl, ReapOptions{DryRun: true}, held))
	if len(f.Running()) != 7 || !strings.Contains(dry.String(), "would terminate "+noState) {
		t.Fatalf("dry run acted or said nothing: %v\n%s", f.Running(), dry.String())
	}
	var out strings.Builder
	out.WriteString(reap(t, fl, ReapOptions{}, held))
	f.AssertRunning(t, live, young, otherLive, otherOld)
	for _, want := range []string{noState + " (job 2-gone, manager m1): its job state is gone", noID + " (job 4-killed, manager m1): its job state has no instance id",
		expired + " (job 5-old, manager m1): it outlived instance.max_lifetime"} {
		if !strings.Contains(out.String(), "terminated "+want) {
			t.Errorf("reap output lacks %q:\n%s", want, out.String())
		}
	}
	out.WriteString(reap(t, fl, ReapOptions{AllManagers: true}, held))
	f.AssertRunning(t, live, young, otherLive)
}

func TestReapFromCleanupIsRateLimited(t *testing.T) {
	f := provisiontest.New()
	fl := testFleet(t, f)
	fl.s.Reap.Interval = settings.Duration{Duration: 5 * time.Minute}
	none := states(nil)
	fl.ReapIfDue(t.Context(), none)
	fl.ReapIfDue(t.Context(), none)
	if f.Calls["DescribeInstances"] != 1 {
		t.Fatalf("reaped %d times within the interval", f.Calls["DescribeInstances"])
	}
	fl.now = func() time.Time { return now.Add(time.Hour) }
	fl.ReapIfDue(t.Context(), none)
	if f.Calls["DescribeInstances"] != 2 {
		t.Fatalf("not reaped after the interval: %v", f.Calls)
	}
}

func TestListShowsOwnWorkers(t *testing.T) {
	f := provisiontest.New()
	fl := testFleet(t, f)
	own := launch(t, fl, f, "1-a", "m1", now.Add(-90*time.Second))
	other := launch(t, fl, f, "2-b", "m2", now)
	var out strings.Builder
	if err := fl.List(context.Background(), false, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], own) || !strings.Contains(lines[1], "t3.micro") || !strings.Contains(lines[1], "on-demand") ||
		!strings.Contains(lines[1], "1m30s") || !strings.Contains(lines[1], "1-a") || strings.Contains(out.String(), other) {
		t.Fatalf("instances:\n%s", out.String())
	}
}

func TestAClaimedPoolWorkerBelongsToItsJob(t *testing.T) {
	fl := testFleet(t, provisiontest.New())
	fl.s.Instance.Tags = map[string]string{"team": "ci"}
	tags := fl.ClaimTags(Job{Key: "42-abcd", ID: "42", ProjectID: "7"})
	if tags[TagJobKey] != "42-abcd" || tags[TagPoolState] != PoolClaimed || tags[TagExpiresAt] != "2026-11-22T18:00:00Z" ||
		tags[TagCreatedAt] != "2026-11-22T12:00:00Z" || tags[TagProjectID] != "7" {
		t.Errorf("claim tags %v", tags)
	}
	if _, ok := tags[TagManager]; ok || tags["team"] != "" {
		t.Errorf("claim tags rewrite what launch set: %v", tags)
	}
}

// TestReapLeavesAPoolsWorkersToTheirExpiry: an idle or booting pool worker has no
// job state by design; only its expiry tag, renewed by a live pool, ends it.
func TestReapLeavesAPoolsWorkersToTheirExpiry(t *testing.T) {
	f := provisiontest.New()
	fl := testFleet(t, f)
	pooled := func(key, state string, at time.Time) string {
		tags := fl.tags(Job{Key: key}, at)
		tags[TagPoolState] = state
		return f.Launched(t, tags)
	}
	idle := pooled("pool-a-0", PoolIdle, now.Add(-time.Hour))
	booting := pooled("pool-a-1", PoolBooting, now.Add(-time.Hour))
	gone := pooled("pool-b-0", PoolIdle, now.Add(-7*time.Hour)) // its pool stopped renewing
	var out strings.Builder
	out.WriteString(reap(t, fl, ReapOptions{}, states(nil)))
	f.AssertRunning(t, idle, booting)
	if !strings.Contains(out.String(), "terminated "+gone) {
		t.Errorf("reap output:\n%s", out.String())
	}
}

func TestAManagerWhoseHeartbeatStoppedHasItsWorkersReaped(t *testing.T) {
	f := provisiontest.New()
	fl := testFleet(t, f)
	alive := launch(t, fl, f, "1-a", "m2", now)
	dead := launch(t, fl, f, "2-b", "m3", now)
	silent := launch(t, fl, f, "3-c", "m4", now) // never ran a pool: no heartbeat
	for manager, at := range map[string]time.Time{"m2": now.Add(-time.Minute), "m3": now.Add(-11 * time.Minute)} {
		other := *fl
		other.s.ManagerID, other.now = manager, func() time.Time { return at }
		if err := other.Beat(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	out.WriteString(reap(t, fl, ReapOptions{AllManagers: true}, states(nil)))
	f.AssertRunning(t, alive, silent)
	if !strings.Contains(out.String(), "terminated "+dead+" (job 2-b, manager m3): its manager's heartbeat is 11m0s old (reap.manager_timeout 10m0s)") {
		t.Errorf("reap output:\n%s", out.String())
	}
}

// Two launches for one job key (a runner without config_exec retrying prepare) get
// tokens of their own: EC2 refuses a token reused with other parameters.
func TestEachLaunchOfAJobKeyHasItsOwnClientToken(t *testing.T) {
	fl := testFleet(t, provisiontest.New())
	a, errA := fl.launchSpec(t.Context(), fl.s.Instance, Job{Key: "job-42", ID: "42"}, nil)
	b, errB := fl.launchSpec(t.Context(), fl.s.Instance, Job{Key: "job-42", ID: "42"}, nil)
	if errA != nil || errB != nil || a.ClientToken == b.ClientToken {
		t.Fatalf("tokens %q and %q (%v, %v)", a.ClientToken, b.ClientToken, errA, errB)
	}
}

// TestNoPoolIsQuietUnlessOneIsAskedFor: a runner without pool settings launches cold
// by design and says nothing at INFO or above; one whose settings ask for a pool, or
// whose socket is there, gets a warning.
func TestNoPoolIsQuietUnlessOneIsAskedFor(t *testing.T) {
	var out strings.Builder
	s := settings.Default()
	s.StateDir = t.TempDir()
	f := New(s, Clients{}, hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info}), time.Now)
	f.noPool(s.PoolSocket(), errNoPool)
	if out.Len() != 0 {
		t.Errorf("no pool asked for, yet the job log says %q", out.String())
	}
	f.s.Pool.IdleCount = 2
	f.noPool(s.PoolSocket(), errNoPool)
	if !strings.Contains(out.String(), "[WARN]  The warm pool did not answer on "+s.PoolSocket()) {
		t.Errorf("a configured pool that does not answer: %q", out.String())
	}
	out.Reset()
	f.s.Pool.IdleCount = 0
	if err := os.WriteFile(s.PoolSocket(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f.noPool(s.PoolSocket(), errNoPool)
	if !strings.Contains(out.String(), "[WARN]") {
		t.Errorf("a socket nobody answers on: %q", out.String())
	}
}

// TestTheUserDataLimitIsCheckedWithRealKeys: a worker.runcmd that fits 16 KiB with
// placeholder keys but not with real ones (as every launch would render it) fails
// the check.
func TestTheUserDataLimitIsCheckedWithRealKeys(t *testing.T) {
	s := settings.Default()
	size := func(pad int) int {
		s.Worker.Runcmd = []string{"echo " + strings.Repeat("x", pad)}
		out, err := cloudinit.Render(cloudinit.Placeholder(s.SSH.User), CloudOptions(s))
		if err != nil {
			return cloudinit.MaxUserData + 1
		}
		return len(out)
	}
	pad := cloudinit.MaxUserData - size(0)
	for size(pad) > cloudinit.MaxUserData-40 {
		pad--
	}
	s.Worker.Runcmd = []string{"echo " + strings.Repeat("x", pad)}
	if _, err := CheckWorker(s); err == nil || !strings.Contains(err.Error(), "over EC2's 16384-byte user-data limit") {
		t.Errorf("%d bytes with placeholder keys: the check with real keys said %v", size(pad), err)
	}
}

// TestReapKeepsAWorkerWhoseStateItCannotRead: a pool or reaper running as another
// user than the stages finds their state files unreadable; their jobs may be
// running, so only the expiry tag may end those workers.
func TestReapKeepsAWorkerWhoseStateItCannotRead(t *testing.T) {
	f := provisiontest.New()
	fl := testFleet(t, f)
	running := launch(t, fl, f, "1-root", "m1", now.Add(-time.Hour))
	expired := launch(t, fl, f, "2-root-old", "m1", now.Add(-7*time.Hour))
	denied := func(string) (string, error) {
		return "", &os.PathError{Op: "open", Path: "/var/lib/ec2-executor/x", Err: os.ErrPermission}
	}
	var out strings.Builder
	out.WriteString(reap(t, fl, ReapOptions{}, denied))
	f.AssertRunning(t, running)
	if !strings.Contains(out.String(), "terminated "+expired) {
		t.Errorf("the expired worker was kept:\n%s", out.String())
	}
}

// reap runs fl.Reap and returns its lines, as the reap command prints them.
func reap(t *testing.T, fl *Fleet, opts ReapOptions, holder Leases) string {
	t.Helper()
	done, err := fl.Reap(t.Context(), opts, holder)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, r := range done {
		b.WriteString(r.String() + "\n")
	}
	return b.String()
}

// The pool could not pull an image that is no reference after the rewrites, nor an
// ECR image with registry.ecr off; a rewrite into ECR counts.
func TestCheckPrepullNamesWhatThePoolCannotPull(t *testing.T) {
	s := settings.Default()
	s.Registry.ECR = settings.ECROff
	s.Registry.Rewrites = []settings.Rewrite{{Prefix: "docker.io/library/", Replacement: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hub/"}}
	s.Pool.PrepullImages = []string{"registry.example/ok:1", "alpine:3", "Not A Reference"}
	err := CheckPrepull(s)
	if err == nil || !strings.Contains(err.Error(), "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hub/alpine:3 is in ECR and registry.ecr = \"off\"") ||
		!strings.Contains(err.Error(), "pool.prepull_images: Not A Reference") || strings.Contains(err.Error(), "registry.example") {
		t.Fatalf("got %v", err)
	}
	s.Registry.ECR = settings.ECRWorker
	s.Pool.PrepullImages = s.Pool.PrepullImages[:2]
	if err := CheckPrepull(s); err != nil {
		t.Fatalf("with ECR through the worker: %v", err)
	}
}
