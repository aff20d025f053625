package cpucost

import (
	"errors"
	"math"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name      string
		stat      string
		user, sys time.Duration
		wantErr   bool
	}{
		{name: "plain",
			stat: "1234 (shoal) S 1 1234 1234 0 -1 4194560 5000 0 0 0 250 75 0 0 20 0 12 0 100 0 0\n",
			user: 2500 * time.Millisecond, sys: 750 * time.Millisecond},
		{name: "name with spaces and parens",
			stat: "77 (a (b) c) R 1 77 77 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 0 0",
			user: 30 * time.Millisecond, sys: 40 * time.Millisecond},
		{name: "no name", stat: "77 shoal R 1", wantErr: true},
		{name: "too short", stat: "77 (x) R 1 2 3", wantErr: true},
		{name: "not a number", stat: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 x 4 0 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseStat(tt.stat)
			if tt.wantErr {
				if !errors.Is(err, ErrUnavailable) {
					t.Fatalf("ParseStat = %v, %v; want ErrUnavailable", s, err)
				}
				return
			}
			if err != nil || s.User != tt.user || s.System != tt.sys {
				t.Fatalf("ParseStat = %+v, %v; want user %v sys %v", s, err, tt.user, tt.sys)
			}
		})
	}
}

func TestPerGiB(t *testing.T) {
	if got := PerGiB(3*time.Second, 2<<30); math.Abs(got-1.5) > 1e-9 {
		t.Errorf("3 s over 2 GiB = %v CPU-s/GiB, want 1.5", got)
	}
	if got := PerGiB(500*time.Millisecond, 512<<20); math.Abs(got-1) > 1e-9 {
		t.Errorf("0.5 s over 512 MiB = %v CPU-s/GiB, want 1", got)
	}
	if got := PerGiB(time.Second, 0); got != 0 {
		t.Errorf("no bytes = %v, want 0", got)
	}
	if got := (Sample{User: time.Second}).Sub(Sample{User: 2 * time.Second}); got != 0 {
		t.Errorf("counters going backwards = %v, want 0", got)
	}
}

// TestMeterAgreesWithGetrusage burns CPU in this process and checks the
// meter against the kernel's other account of it, getrusage(RUSAGE_SELF),
// taken just outside the meter's samples.
func TestMeterAgreesWithGetrusage(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("cpucost reads /proc (Linux)")
	}
	before := rusage(t)
	m := Start(os.Getpid(), -1)
	for rusage(t)-before < 300*time.Millisecond {
		x := 0
		for i := range 1 << 20 {
			x += i * i
		}
		sink = x
	}
	got, err := m.Stop()
	after := rusage(t)
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("Stop error = %v, want ErrUnavailable for pid -1", err)
	}
	if got[1] != 0 {
		t.Errorf("unreadable pid got %v, want 0", got[1])
	}
	// /proc counts in 10 ms ticks, getrusage finer: allow two ticks.
	if lo, hi := 300*time.Millisecond-2*clockTick, after-before+2*clockTick; got[0] < lo || got[0] > hi {
		t.Errorf("meter saw %v of this process, want between %v and %v (getrusage)", got[0], lo, hi)
	}
}

func rusage(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var sink int
