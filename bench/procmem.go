package bench

// This file owns memory sampling of a process (S8): VmRSS and VmHWM from
// /proc/PID/status, once or every interval while a scenario runs.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrProcStatus: a /proc/PID/status text lacks or garbles VmRSS or VmHWM.
var ErrProcStatus = errors.New("bench: bad /proc status")

// ProcMem is a process's resident memory in bytes: RSS now (VmRSS) and its
// peak since the process started (VmHWM, the high-water mark).
type ProcMem struct {
	RSS, HWM int64
}

// ParseProcStatus reads VmRSS and VmHWM from the text of /proc/PID/status
// (lines like "VmRSS:	  123456 kB"; the kernel's kB are KiB).
func ParseProcStatus(r io.Reader) (ProcMem, error) {
	var m ProcMem
	var haveRSS, haveHWM bool
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		n, err := parseKB(v)
		if err != nil {
			return ProcMem{}, fmt.Errorf("%w: %s: %w", ErrProcStatus, k, err)
		}
		if k == "VmRSS" {
			m.RSS, haveRSS = n, true
		} else {
			m.HWM, haveHWM = n, true
		}
	}
	if err := sc.Err(); err != nil {
		return ProcMem{}, fmt.Errorf("%w: %w", ErrProcStatus, err)
	}
	if !haveRSS || !haveHWM {
		return ProcMem{}, fmt.Errorf("%w: no VmRSS or VmHWM line (a kernel thread, or not Linux)", ErrProcStatus)
	}
	return m, nil
}

// parseKB parses "  123456 kB" into bytes.
func parseKB(v string) (int64, error) {
	f := strings.Fields(v)
	if len(f) != 2 || f[1] != "kB" {
		return 0, fmt.Errorf("want \"<n> kB\", got %q", strings.TrimSpace(v))
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || n < 0 || n > 1<<43 { // 8 EiB in bytes: more is garbage
		return 0, fmt.Errorf("bad count %q", f[0])
	}
	return n << 10, nil
}

// ReadProcMem reads pid's VmRSS and VmHWM.
func ReadProcMem(pid int) (ProcMem, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcMem{}, fmt.Errorf("bench: read memory of process %d: %w", pid, err)
	}
	defer f.Close()
	m, err := ParseProcStatus(f)
	if err != nil {
		return ProcMem{}, fmt.Errorf("bench: read memory of process %d: %w", pid, err)
	}
	return m, nil
}

// MemSampler samples a process's memory every interval in a goroutine of
// its own, which Stop ends and waits for.
type MemSampler struct {
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex // guards the fields below
	peak    ProcMem    // the largest RSS and HWM seen
	samples int
	err     error // the first failed read
}

// SampleMem starts sampling pid every interval (one sample right away).
func SampleMem(pid int, interval time.Duration) *MemSampler {
	s := &MemSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			s.sample(pid)
			select {
			case <-s.stop:
				s.sample(pid) // the state at the end counts too
				return
			case <-tk.C:
			}
		}
	}()
	return s
}

func (s *MemSampler) sample(pid int) {
	m, err := ReadProcMem(pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		return
	}
	s.samples++
	s.peak.RSS = max(s.peak.RSS, m.RSS)
	s.peak.HWM = max(s.peak.HWM, m.HWM)
}

// Stop ends sampling and returns the peaks seen, the number of successful
// samples and the first error.
func (s *MemSampler) Stop() (peak ProcMem, samples int, err error) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.samples, s.err
}

// mb renders bytes as MB (10^6 bytes), the unit of S8's targets.
func mb(n int64) float64 { return float64(n) / 1e6 }
