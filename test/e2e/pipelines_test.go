//go:build e2e

package e2e

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/test/gitlabapi"
	"github.com/ec2-executor/ec2-executor/test/stack"
)

// These run the shapes of a real pipeline through the real gitlab-runner 17.5, as a
// team moving from docker+machine tries them first: the runner's own get_sources
// against Git over HTTP with the job token, its distributed cache on S3 (moto), and
// artifacts passed from one job to the next through the jobs API. docs/pipelines.md
// names each test beside the docker executor's behaviour it checks.

// project is a repository on the stand-in's Git: group/app with a submodule
// group/lib, a tag v1.0 on its second commit and a third commit on main.
type project struct {
	app, lib           *gitlabapi.Repo
	first, tagged, tip string
}

func newProject(t *testing.T, name string) project {
	t.Helper()
	api := st.JobsAPI
	lib, err := api.NewRepo("group/"+name+"-lib", map[string]string{"lib.txt": "library of " + name + "\n"})
	if err != nil {
		t.Fatal(err)
	}
	app, err := api.NewRepo("group/"+name, map[string]string{"README": "first\n"})
	if err != nil {
		t.Fatal(err)
	}
	p := project{app: app, lib: lib}
	if p.first, err = app.Commit("first", map[string]string{"README": "first\n", "a.txt": "a\n"}); err != nil {
		t.Fatal(err)
	}
	if p.tagged, err = app.AddSubmodule(lib, "lib"); err != nil {
		t.Fatal(err)
	}
	if err := app.Tag("v1.0"); err != nil {
		t.Fatal(err)
	}
	if p.tip, err = app.Commit("third", map[string]string{"README": "third\n"}); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkout is a spec that checks p out at ref and prints, from build_script, what
// the build container sees: the commit (a detached HEAD holds its SHA), whether the
// clone is shallow, and the submodule's file.
func (p project) checkout(id int, strategy, ref, refType, sha string) gitlabapi.Spec {
	return gitlabapi.Spec{ID: id, ProjectID: 70, Project: p.app.Path, Image: stack.JobImage, Credentials: registryCreds(),
		GitStrategy: strategy, Ref: ref, RefType: refType, SHA: sha,
		Script: []string{"echo HEAD=$(cat .git/HEAD)", "echo SHALLOW=$(wc -l < .git/shallow 2>/dev/null || echo no)",
			"cat README", "cat lib/lib.txt 2>/dev/null || echo no submodule"}}
}

func TestRealRunnerClonesWithTheJobToken(t *testing.T) {
	p := newProject(t, "clone")
	spec := p.checkout(8101, "clone", "main", "branch", p.tip)
	spec.GitDepth = 1
	job, trace := realJob(t, spec, "", "", nil)
	if job.State != "success" {
		t.Fatalf("clone job ended %s (%s)", job.State, job.FailureReason)
	}
	// 17.5 says "Fetching changes" for clone too; clone starts from an empty directory.
	contains(t, trace, "Fetching changes with git depth set to 1", "Created fresh repository", "HEAD="+p.tip, "SHALLOW=1", "third",
		"Skipping Git submodules setup")

	// A submodule in another project of the same GitLab: 17.5's credential helper
	// (FF_GIT_URLS_WITHOUT_TOKENS, on by default) answers only for the job's own
	// project URL, so with any executor such a submodule needs the flag off, which
	// gives git the token through its insteadOf rule (docs/pipelines.md).
	spec = p.checkout(8102, "fetch", "v1.0", "tag", p.tagged)
	spec.GitSubmodules = "recursive"
	spec.Variables = map[string]string{"FF_GIT_URLS_WITHOUT_TOKENS": "false"}
	job, trace = realJob(t, spec, "", "", nil)
	if job.State != "success" {
		t.Fatalf("tag job ended %s (%s)", job.State, job.FailureReason)
	}
	contains(t, trace, "Fetching changes", "Checking out "+p.tagged[:8]+" as detached HEAD (ref is v1.0)",
		"Updating/initializing submodules recursively", "HEAD="+p.tagged, "SHALLOW=no", "first", "library of clone")
	assertNoneRunning(t)
}

func TestRealRunnerCloneWithAWrongTokenFailsWithGitsWords(t *testing.T) {
	// 17.5 gives git the job token through a credential helper
	// (FF_GIT_URLS_WITHOUT_TOKENS is on by default), so the token GitLab refuses on Git
	// is the job's own: one that has lost access to the project.
	p := newProject(t, "denied")
	const bad = "job-token-no-access-71c3"
	spec := p.checkout(8103, "clone", "main", "branch", p.tip)
	spec.Token = bad
	st.JobsAPI.DenyGit(bad)
	denied := st.JobsAPI.GitDenied()
	job, trace := realJob(t, spec, "", "", nil)
	if job.State != "failed" {
		t.Fatalf("job with a wrong token ended %s", job.State)
	}
	// 17.5 reports a failed get_sources as the script's failure, as with the docker executor.
	if job.FailureReason != "script_failure" {
		t.Errorf("failure reason %q, want script_failure", job.FailureReason)
	}
	if st.JobsAPI.GitDenied() == denied {
		t.Error("the Git server refused nothing: the clone did not use the wrong token")
	}
	contains(t, trace, "HTTP Basic: Access denied", "Authentication failed")
	if strings.Contains(trace, bad) || strings.Contains(trace, "HEAD=") {
		t.Errorf("the job log shows the token or a build_script after the failed clone")
	}
	assertNoneRunning(t)
}

func TestRealRunnerS3CacheAcrossWorkers(t *testing.T) {
	s3 := stack.RunnerS3Cache(stack.MotoAddr)
	save := gitlabapi.Spec{ID: 8111, ProjectID: 71, Image: stack.JobImage, Credentials: registryCreds(),
		CacheKey: "deps-8111", CachePaths: []string{"vendor"}, CachePolicy: "push",
		Script: []string{"mkdir -p vendor", "echo saved-by-8111 > vendor/dep"}}
	job, trace := realJobIn(t, s3, save, "", "", nil)
	if job.State != "success" {
		t.Fatalf("saving job ended %s (%s)", job.State, job.FailureReason)
	}
	contains(t, trace, "Creating cache deps-8111", "Uploading cache.zip to", "Created cache")
	objects, err := stack.CacheObjects(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	key := "project/71/deps-8111"
	if objects[key] == 0 {
		t.Fatalf("the bucket holds %v, want %s", objects, key)
	}

	restore := gitlabapi.Spec{ID: 8112, ProjectID: 71, Image: stack.JobImage, Credentials: registryCreds(),
		CacheKey: "deps-8111", CachePaths: []string{"vendor"}, CachePolicy: "pull",
		Script: []string{"cat vendor/dep"}}
	job, trace = realJobIn(t, s3, restore, "", "", nil)
	if job.State != "success" {
		t.Fatalf("restoring job ended %s (%s)", job.State, job.FailureReason)
	}
	contains(t, trace, "Checking cache for deps-8111", "Downloading cache from", "Successfully extracted cache", "saved-by-8111")
	if strings.Contains(trace, "Creating cache") {
		t.Error("a job with cache policy pull saved the cache")
	}
	assertNoneRunning(t)
}

func TestRealRunnerS3CacheUnreachableIsAWarning(t *testing.T) {
	s3 := stack.RunnerS3Cache("127.0.0.1:1") // nothing answers there
	spec := gitlabapi.Spec{ID: 8113, ProjectID: 71, Image: stack.JobImage, Credentials: registryCreds(),
		CacheKey: "deps-8113", CachePaths: []string{"vendor"},
		Script: []string{"mkdir -p vendor", "echo built-without-cache > vendor/dep", "cat vendor/dep"}}
	job, trace := realJobIn(t, s3, spec, "", "", nil)
	if job.State != "success" {
		t.Fatalf("job ended %s (%s): an unreachable cache must not fail it", job.State, job.FailureReason)
	}
	contains(t, trace, "built-without-cache", "Failed to extract cache", "WARNING")
	assertNoneRunning(t)
}

func TestRealRunnerArtifactsBetweenJobs(t *testing.T) {
	build := gitlabapi.Spec{ID: 8121, ProjectID: 72, Image: stack.JobImage, Credentials: registryCreds(),
		ArtifactPaths: []string{"dist"}, JUnit: []string{"report.xml"},
		Script: []string{"mkdir -p dist", "echo binary-from-8121 > dist/app",
			`echo '<testsuite name="unit" tests="1"><testcase name="ok"/></testsuite>' > report.xml`}}
	job, trace := realJob(t, build, "", "", nil)
	if job.State != "success" {
		t.Fatalf("building job ended %s (%s)", job.State, job.FailureReason)
	}
	if !slices.Contains(job.ArtifactFiles, "dist/app") || !slices.Contains(job.Reports, "junit") {
		t.Fatalf("the API received files %v and reports %v, want dist/app and a junit report", job.ArtifactFiles, job.Reports)
	}
	contains(t, trace, "Uploading artifacts for successful job", "201 Created")

	test := gitlabapi.Spec{ID: 8122, ProjectID: 72, Image: stack.JobImage, Credentials: registryCreds(),
		Dependencies: []gitlabapi.Dependency{{ID: 8121, Name: "build", Token: secrets[0], Size: st.JobsAPI.ArchiveSize(8121)}},
		Script:       []string{"cat dist/app"}}
	job, trace = realJob(t, test, "", "", nil)
	if job.State != "success" {
		t.Fatalf("dependent job ended %s (%s)", job.State, job.FailureReason)
	}
	contains(t, trace, "Downloading artifacts for build (8121)", "binary-from-8121")
	if st.JobsAPI.Job(8121).Downloads == 0 {
		t.Error("the dependent job never downloaded the archive from the API")
	}
	assertNoneRunning(t)
}

// TestRealRunnerImagesAsPublished: an image with its own ENTRYPOINT and USER, the
// same with `entrypoint: [""]`, a service with alias, entrypoint and command that is
// slow to listen, a file variable and a job's pull_policy.
func TestRealRunnerImagesAsPublished(t *testing.T) {
	cfg := settingsFile(t, "published.toml", st.Endpoint(), func(s *settings.Settings) {
		s.Docker.AllowedPullPolicies = []string{settings.PullAlways, settings.PullIfNotPresent}
	})
	spec := gitlabapi.Spec{ID: 8141, ProjectID: 74, Image: stack.PublishedImage, Credentials: registryCreds(),
		PullPolicy: []string{settings.PullIfNotPresent}, FileVariables: map[string]string{"DEPLOY_CONFIG": "file-variable-content"},
		Script: []string{"echo uid=$(id -u) home=$(pwd) entrypoint=${FROM_ENTRYPOINT:-no}", `cat "$DEPLOY_CONFIG"; echo " at $DEPLOY_CONFIG"`}}
	job, trace := realJob(t, spec, cfg, "", nil)
	if job.State != "success" {
		t.Fatalf("job ended %s (%s)", job.State, job.FailureReason)
	}
	contains(t, trace, "(pull policy if-not-present)", "published entrypoint ran as 1000", "uid=1000", "entrypoint=yes",
		"file-variable-content at /builds/")

	spec = gitlabapi.Spec{ID: 8142, ProjectID: 74, Image: stack.PublishedImage, ImageEntrypoint: []string{""}, Credentials: registryCreds(),
		Services: []gitlabapi.Service{{Name: stack.ServiceImage, Alias: "slow", Entrypoint: []string{"/bin/sh", "-c"},
			Command: []string{"echo service command ran; sleep 3; exec httpd -f -p 8080 -h /www"}}},
		Script: []string{"echo uid=$(id -u) entrypoint=${FROM_ENTRYPOINT:-no}", "wget -q -O- http://slow:8080/"}}
	job, trace = realJob(t, spec, cfg, "", nil)
	if job.State != "success" {
		t.Fatalf("job ended %s (%s)", job.State, job.FailureReason)
	}
	contains(t, trace, "as 127.0.0.1__ci__service, 127.0.0.1-ci-service, slow", "uid=1000 entrypoint=no", "service-ok")
	if strings.Contains(trace, "published entrypoint ran") || strings.Contains(trace, "did not come up") {
		t.Error("entrypoint [\"\"] still ran the image's entrypoint, or the slow service was not waited for")
	}
	assertNoneRunning(t)
}

var pooledWorkerLine = regexp.MustCompile(`Using worker (i-[0-9a-f]+) from the pool`)

// TestRealRunnerFetchOnAReusedPoolWorker: two jobs of one project with
// GIT_STRATEGY fetch, the second on the worker the first gave back
// (pool.max_builds = 2). The wipe between them removes the first job's volumes, so
// the second fetches into a fresh repository (docs/pipelines.md says how this
// differs from the docker executor) and checks out its own commit.
func TestRealRunnerFetchOnAReusedPoolWorker(t *testing.T) {
	p := newPool(t, "reuse-fetch", 1, func(s *settings.Settings) { s.Pool.MaxBuilds = 2 })
	p.start()
	p.waitIdle(1)
	proj := newProject(t, "reuse")
	var used []string
	for i, sha := range []string{proj.tagged, proj.tip} {
		spec := proj.checkout(8161+i, "fetch", "main", "branch", sha)
		job, trace := realJob(t, spec, p.jobCfg, "", nil)
		if job.State != "success" {
			t.Fatalf("job %d ended %s (%s)", spec.ID, job.State, job.FailureReason)
		}
		contains(t, trace, "Fetching changes", "Created fresh repository", "HEAD="+sha)
		if m := pooledWorkerLine.FindStringSubmatch(trace); m != nil {
			used = append(used, m[1])
		}
		if i == 0 {
			p.waitIdle(2) // the given-back worker, wiped, beside the refill
		}
	}
	if len(used) != 2 || used[0] != used[1] {
		t.Errorf("the jobs ran on pool workers %v, want the second on the first's", used)
	}
	p.finish()
}
