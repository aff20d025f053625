// Package cpucost measures what a process spends in CPU time, the way the
// benchmarks judge cost: CPU-seconds (user + system, all threads) of a
// process between two samples, divided by the bytes it moved, per GiB.
//
// It reads /proc/PID/stat (Linux), which counts in clock ticks of 10 ms:
// a meter is meant for phases of a second or more (a GiB-class read).
package cpucost

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ErrUnavailable: the process's CPU times cannot be read (not Linux, the
// process is gone, or /proc is not mounted).
var ErrUnavailable = errors.New("cpucost: cpu times unavailable")

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports (the kernel exports it as
// a fixed ABI value, whatever its internal HZ).
const clockTick = 10 * time.Millisecond

// Sample is a process's CPU time at one moment.
type Sample struct {
	User, System time.Duration
}

// Total is user plus system time.
func (s Sample) Total() time.Duration { return s.User + s.System }

// Sub is the CPU time spent from s0 to s (zero if the counters went
// backwards, which happens only when the PID was reused).
func (s Sample) Sub(s0 Sample) time.Duration {
	d := s.Total() - s0.Total()
	if d < 0 {
		return 0
	}
	return d
}

// Read samples the CPU times of process pid.
func Read(pid int) (Sample, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Sample{}, fmt.Errorf("%w: pid %d: %w", ErrUnavailable, pid, err)
	}
	return ParseStat(string(b))
}

// ParseStat reads utime and stime (fields 14 and 15) from the text of a
// /proc/PID/stat file. The second field, the command name in parentheses,
// may itself hold spaces and parentheses, so fields are counted from the
// last ')'.
func ParseStat(stat string) (Sample, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return Sample{}, fmt.Errorf("%w: no command name in stat line", ErrUnavailable)
	}
	// After ')' come field 3 (state) onwards: utime is the 12th of them.
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return Sample{}, fmt.Errorf("%w: stat line has %d fields after the name, want >= 13", ErrUnavailable, len(f))
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return Sample{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return Sample{User: time.Duration(u) * clockTick, System: time.Duration(s) * clockTick}, nil
}

// PerGiB is CPU-seconds per GiB: cpu spent moving bytes. Zero when no bytes
// moved.
func PerGiB(cpu time.Duration, bytes int64) float64 {
	if bytes <= 0 {
		return 0
	}
	return cpu.Seconds() / (float64(bytes) / (1 << 30))
}

// Meter samples a set of processes at Start and at Stop.
type Meter struct {
	pids  []int
	start []Sample
	errs  []error
}

// Start samples the processes; a process that cannot be read is reported
// by Stop.
func Start(pids ...int) *Meter {
	m := &Meter{pids: pids, start: make([]Sample, len(pids)), errs: make([]error, len(pids))}
	for i, p := range pids {
		m.start[i], m.errs[i] = Read(p)
	}
	return m
}

// Stop returns the CPU time each process spent since Start, in the order
// given to Start. The error joins every process that could not be read at
// either end; its entry is zero.
func (m *Meter) Stop() ([]time.Duration, error) {
	out := make([]time.Duration, len(m.pids))
	var errs []error
	for i, p := range m.pids {
		s, err := Read(p)
		if err = errors.Join(m.errs[i], err); err != nil {
			errs = append(errs, err)
			continue
		}
		out[i] = s.Sub(m.start[i])
	}
	return out, errors.Join(errs...)
}
