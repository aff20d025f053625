package bench

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseProcStatus(t *testing.T) {
	const status = "Name:\tshoal\nVmPeak:\t 2000000 kB\nVmHWM:\t  150000 kB\nVmRSS:\t  120000 kB\nThreads:\t12\n"
	m, err := ParseProcStatus(strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS != 120000<<10 || m.HWM != 150000<<10 {
		t.Errorf("got %+v, want RSS %d HWM %d", m, 120000<<10, 150000<<10)
	}
}

func TestParseProcStatusRejects(t *testing.T) {
	for name, status := range map[string]string{
		"empty":        "",
		"no HWM":       "VmRSS:\t 100 kB\n",
		"no RSS":       "VmHWM:\t 100 kB\n",
		"not a number": "VmRSS:\t lots kB\nVmHWM:\t 100 kB\n",
		"negative":     "VmRSS:\t -5 kB\nVmHWM:\t 100 kB\n",
		"other unit":   "VmRSS:\t 100 MB\nVmHWM:\t 100 kB\n",
		"no unit":      "VmRSS:\t 100\nVmHWM:\t 100 kB\n",
		"huge":         "VmRSS:\t 99999999999999999 kB\nVmHWM:\t 100 kB\n",
	} {
		if _, err := ParseProcStatus(strings.NewReader(status)); !errors.Is(err, ErrProcStatus) {
			t.Errorf("%s: err %v, want ErrProcStatus", name, err)
		}
	}
}

func TestReadProcMemSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc on this system")
	}
	m, err := ReadProcMem(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.HWM < m.RSS {
		t.Errorf("this process: %+v, want 0 < RSS <= HWM", m)
	}
}

func TestMemSamplerSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc on this system")
	}
	s := SampleMem(os.Getpid(), time.Millisecond)
	peak, n, err := s.Stop()
	if err != nil || n < 2 || peak.RSS <= 0 || peak.HWM < peak.RSS {
		t.Errorf("peak %+v after %d samples, err %v: want at least the first and last sample", peak, n, err)
	}
	// A process that is gone is an error, not a zero figure.
	s = SampleMem(1<<30, time.Millisecond)
	if _, n, err := s.Stop(); err == nil || n != 0 {
		t.Errorf("missing process: %d samples, err %v", n, err)
	}
}
