package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Thresholds for a machine too busy for figures worth committing. The benchmark
// loads the machine itself (the stack, its dockerd and sshds), so the load it
// judges is the load before it starts; steal (time the hypervisor gave other
// guests) is judged throughout.
const (
	busyLoadPerCPU = 0.5  // 1-minute load average per CPU before the run
	busySteal      = 0.05 // share of CPU time stolen during the run
)

// quiet watches the machine for the run: the load average it started on and the
// CPU time stolen while it ran.
type quiet struct {
	startLoad float64
	start     cpuTimes
	mu        sync.Mutex
	maxLoad   float64
	stop      chan struct{}
	done      sync.WaitGroup
}

// cpuTimes are /proc/stat's aggregate CPU counters: steal and all.
type cpuTimes struct{ steal, total uint64 }

func watchMachine() *quiet {
	q := &quiet{startLoad: loadAverage(), start: readCPU(), stop: make(chan struct{})}
	q.maxLoad = q.startLoad
	q.done.Go(func() {
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-q.stop:
				return
			case <-tick.C:
				l := loadAverage()
				q.mu.Lock()
				q.maxLoad = max(q.maxLoad, l)
				q.mu.Unlock()
			}
		}
	})
	return q
}

// finish stops watching and says why the machine was busy, or "" when it was quiet.
func (q *quiet) finish() string {
	close(q.stop)
	q.done.Wait()
	end := readCPU()
	var why []string
	if per := q.startLoad / float64(runtime.NumCPU()); per > busyLoadPerCPU {
		why = append(why, fmt.Sprintf("the load average was %.2f on %d CPUs when it started (above %.1f per CPU)", q.startLoad, runtime.NumCPU(), busyLoadPerCPU))
	}
	if total := end.total - q.start.total; total > 0 {
		if steal := float64(end.steal-q.start.steal) / float64(total); steal > busySteal {
			why = append(why, fmt.Sprintf("%.1f%% of CPU time was stolen by the hypervisor (above %.0f%%)", 100*steal, 100*busySteal))
		}
	}
	return strings.Join(why, "; ")
}

// summary is the run's line about the machine, for the report.
func (q *quiet) summary() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return fmt.Sprintf("load average %.2f at the start (%.2f at most during the run, the benchmark's own load included)", q.startLoad, q.maxLoad)
}

func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func readCPU() cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal guest guest_nice
	var t cpuTimes
	for i, s := range f[1:] {
		v, _ := strconv.ParseUint(s, 10, 64)
		if i < 8 { // guest time is already counted in user
			t.total += v
		}
		if i == 7 {
			t.steal = v
		}
	}
	return t
}
