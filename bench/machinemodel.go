package main

import (
	"container/heap"
	"net/url"
	"slices"
	"time"

	"github.com/ec2-executor/ec2-executor/test/stack"
)

// The docker+machine peer is computed, not run: its amazonec2 driver is a fork of
// docker/machine, and what matters here is the EC2 calls it makes for each machine,
// which its source documents (docker/machine drivers/amazonec2/amazonec2.go, at
// b170508b, with the subnet and security group given, as in GitLab's AWS
// autoscaling guide):
//
//   - checkPrereqs: DescribeKeyPairs for the machine's key name;
//   - createKeyPair: ImportKeyPair;
//   - configureSecurityGroups: DescribeSecurityGroups;
//   - RunInstances for one instance (MinCount = MaxCount = 1);
//   - WaitFor(instanceIpAvailable), then waitForInstance: DescribeInstances by
//     instance id every 3 s until the instance runs (mcnutils.WaitFor: 60 tries,
//     3 s apart, a failed call counting as "not yet");
//   - configureTags: CreateTags;
//   - libmachine's WaitForSSH: DescribeInstances (GetSSHHostname) per SSH try;
//   - on removal: TerminateInstances and DeleteKeyPair.
//
// Its AWS SDK (aws-sdk-go v1) retries a throttled call 3 times, waiting
// 2^retry × 500–1000 ms (the model takes the middle, 750 ms); a create whose call
// still fails is removed and created again, as gitlab-runner's machine provider does
// for a job that still needs a machine. The model replays every machine's calls
// against the same stack.EC2Limits buckets the measured runs face, on a simulated
// clock, with instant answers: a lower bound for docker+machine. Provisioning over
// SSH after that (Docker's install, a DescribeInstances per SSH command) is left out,
// which also favours it.

// machineStep is one EC2 call of a machine's create.
type machineStep struct {
	action string
	form   url.Values
}

var machineSteps = []machineStep{
	{"DescribeKeyPairs", url.Values{"Action": {"DescribeKeyPairs"}, "KeyName.1": {"runner-x"}, "Filter.1.Name": {"key-name"}}},
	{"ImportKeyPair", url.Values{"Action": {"ImportKeyPair"}}},
	{"DescribeSecurityGroups", url.Values{"Action": {"DescribeSecurityGroups"}, "Filter.1.Name": {"group-name"}}},
	{"RunInstances", url.Values{"Action": {"RunInstances"}, "MinCount": {"1"}, "MaxCount": {"1"}}},
	{"DescribeInstances", url.Values{"Action": {"DescribeInstances"}, "InstanceId.1": {"i-x"}}}, // IP available
	{"DescribeInstances", url.Values{"Action": {"DescribeInstances"}, "InstanceId.1": {"i-x"}}}, // running yet?
	{"CreateTags", url.Values{"Action": {"CreateTags"}, "ResourceId.1": {"i-x"}}},
	{"DescribeInstances", url.Values{"Action": {"DescribeInstances"}, "InstanceId.1": {"i-x"}}}, // WaitForSSH
}

const (
	stepRun, stepPoll, stepSSH = 3, 5, 7
	machinePoll                = 3 * time.Second
	sdkV1Retries               = 3
)

// machine is one docker+machine create in flight.
type machine struct {
	at       time.Duration // when its next call happens
	step     int
	retry    int
	launched time.Duration
	ready    time.Duration
	creates  int
}

type machineQueue []*machine

func (q machineQueue) Len() int           { return len(q) }
func (q machineQueue) Less(i, j int) bool { return q[i].at < q[j].at }
func (q machineQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *machineQueue) Push(x any)        { *q = append(*q, x.(*machine)) }
func (q *machineQueue) Pop() any {
	old := *q
	m := old[len(old)-1]
	*q = old[:len(old)-1]
	return m
}

// dockerMachineBurst replays n machine creates that start at once, each running
// boot (RunInstances to sshd; running 3 s before sshd) after its launch, and then
// their removals.
func dockerMachineBurst(n int, boot time.Duration) burst {
	b := burst{name: "docker+machine, one machine per job (computed from its documented calls)", jobs: n,
		calls: map[string]int{}, throttled: map[string]int{}}
	limits := stack.NewEC2Limits()
	epoch := time.Unix(0, 0)
	allow := func(action string, form url.Values, at time.Duration) bool {
		b.calls[action]++
		if limits.Allow(action, form, epoch.Add(at)) {
			return true
		}
		b.throttled[action]++
		return false
	}
	q := make(machineQueue, n)
	for i := range q {
		q[i] = &machine{creates: 1}
	}
	heap.Init(&q)
	var ready []time.Duration
	for q.Len() > 0 {
		m := heap.Pop(&q).(*machine)
		if m.step == stepSSH && m.at < m.launched+boot { // sshd not up yet: the SSH try fails, 3 s on
			allow(machineSteps[m.step].action, machineSteps[m.step].form, m.at)
			m.at += machinePoll
			heap.Push(&q, m)
			continue
		}
		s := machineSteps[m.step]
		if !allow(s.action, s.form, m.at) {
			m.retry++
			switch {
			case m.retry <= sdkV1Retries:
				m.at += (750 * time.Millisecond) << (m.retry - 1)
			case m.step == stepPoll || m.step == stepSSH: // WaitFor: "not yet"
				m.retry, m.at = 0, m.at+machinePoll
			default: // the create fails: remove (DeleteKeyPair, maybe TerminateInstances) and create again
				allow("DeleteKeyPair", url.Values{"Action": {"DeleteKeyPair"}}, m.at)
				if m.step > stepRun {
					allow("TerminateInstances", url.Values{"Action": {"TerminateInstances"}, "InstanceId.1": {"i-x"}}, m.at)
				}
				m.step, m.retry, m.creates = 0, 0, m.creates+1
			}
			heap.Push(&q, m)
			continue
		}
		m.retry = 0
		switch {
		case m.step == stepRun:
			m.launched = m.at
		case m.step == stepPoll && m.at < m.launched+boot-3*time.Second:
			m.at += machinePoll
			heap.Push(&q, m)
			continue
		case m.step == stepSSH:
			m.ready = m.at
			ready = append(ready, m.at)
			continue
		}
		m.step++
		heap.Push(&q, m)
	}
	b.got = len(ready)
	if len(ready) > 0 {
		b.lastWorker, b.median = slices.Max(ready), series{runs: ready}.median()
	}
	// Every job's machine is removed when it is done: TerminateInstances and
	// DeleteKeyPair each, paced by the same buckets (not timed).
	at := b.lastWorker
	for range n {
		for _, a := range []string{"TerminateInstances", "DeleteKeyPair"} {
			form := url.Values{"Action": {a}, "InstanceId.1": {"i-x"}}
			for !allow(a, form, at) {
				at += 750 * time.Millisecond
			}
		}
	}
	return b
}
