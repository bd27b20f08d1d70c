// Package stages implements gitlab-runner's custom-executor contract: it parses the
// runner's environment and job payload, keeps per-job state between the config,
// prepare, run and cleanup processes, decides build versus system failure in one
// place, and passes values between provision, cloudinit, dockerauth and engine.
//
// stdout is protocol here (one JSON document from config, the job's own output from
// run): nothing else may write to it. Secrets from the environment, the payload and
// the state file must never reach a log line or an error.
package stages
