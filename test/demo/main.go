// Command demo brings the local stack up, runs a sample CI job and a failing variant
// through config, prepare, the run stages and cleanup with the runner simulator,
// prints each job log and what moto saw of the job's instance, and stops the stack.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ec2-executor/ec2-executor/test/runnersim"
	"github.com/ec2-executor/ec2-executor/test/stack"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: demo <path to the ec2-executor binary>")
		os.Exit(2)
	}
	if err := demo(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func demo(binary string) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ec2-executor-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := stack.Up(ctx, dir)
	if err != nil {
		return err
	}
	defer s.Down()
	opts := runnersim.Options{Binary: binary, Settings: s.SettingsFile, Env: stack.Env(), Log: os.Stdout, API: s.JobsAPI}
	jobs := []runnersim.Job{
		{ID: 1001, ProjectID: 7, PipelineID: 500, Name: "test", Image: stack.JobImage, Token: "demo-job-token",
			Credentials: []runnersim.Credential{{URL: stack.RegistryAddr, Username: stack.RegistryUser, Password: stack.RegistryPassword}},
			Script:      []string{"echo Hello from job $CI_JOB_ID on $(hostname)", "echo built > result.txt", "ls -l", "cat result.txt"},
			AfterScript: []string{"echo after_script sees CI_JOB_STATUS=$CI_JOB_STATUS"},
			// The helper container's gitlab-runner-helper archives the cache and uploads
			// result.txt to the stack's stand-in of GitLab's jobs API.
			CacheKey: "demo", CachePaths: []string{"result.txt"}, Artifacts: []string{"result.txt"}},
		{ID: 1002, ProjectID: 7, PipelineID: 500, Name: "test-failing", Image: stack.JobImage, Token: "demo-job-token",
			Credentials: []runnersim.Credential{{URL: stack.RegistryAddr, Username: stack.RegistryUser, Password: stack.RegistryPassword}},
			Script:      []string{"echo this job fails on purpose", "exit 3", "echo never printed"},
			AfterScript: []string{"echo after_script sees CI_JOB_STATUS=$CI_JOB_STATUS"}},
	}
	for _, job := range jobs {
		fmt.Printf("\n======== job %d (%s) ========\n", job.ID, job.Name)
		t0 := time.Now()
		res := runnersim.Run(ctx, job, opts)
		fmt.Printf("======== job %d: status=%s reason=%q exit_code=%d in %s ========\n", job.ID, res.Status, res.FailureReason, res.ExitCode, time.Since(t0).Round(time.Millisecond))
		if err := show(ctx, s, res); err != nil {
			return err
		}
		if len(job.Artifacts) > 0 {
			fmt.Printf("The stand-in jobs API received the job's artifacts: %v\n", s.JobsAPI.Job(job.ID).ArtifactFiles)
		}
	}
	running, err := s.RunningOurs(ctx)
	if err != nil {
		return err
	}
	if len(running) > 0 {
		return fmt.Errorf("instances left running: %v", running)
	}
	fmt.Println("\nmoto holds no running instance of ec2-executor's. Stopping the stack.")
	return nil
}

func show(ctx context.Context, s *stack.Stack, res runnersim.Result) error {
	for _, key := range res.JobKeys {
		insts, err := s.InstancesByTag(ctx, "ec2-executor:job-key", key)
		if err != nil {
			return err
		}
		for _, in := range insts {
			if booted, ok := s.Boot.Booted(*in.InstanceId); ok {
				fmt.Println("The job's worker as moto described it when it booted:")
				fmt.Print(stack.Describe(booted))
			}
			fmt.Println("The same worker after cleanup:")
			fmt.Print(stack.Describe(in))
		}
	}
	return nil
}
