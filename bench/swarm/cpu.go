package swarm

// This file owns the machine CPU sample the report carries: on a small
// shared box the nodes, the origin and the readers compete for the same
// cores, and a run whose CPU was saturated says so.

import (
	"os"
	"strconv"
	"strings"
)

// cpuSample is the aggregate "cpu" line of /proc/stat: busy and total
// jiffies. Zero when /proc/stat is unreadable.
type cpuSample struct{ busy, total uint64 }

func cpuTimes() cpuSample {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuSample{}
	}
	return parseCPU(string(b))
}

// parseCPU reads the first line ("cpu user nice system idle iowait irq
// softirq steal ..."); idle and iowait count as not busy.
func parseCPU(stat string) cpuSample {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return cpuSample{}
	}
	var s cpuSample
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return cpuSample{}
		}
		if i >= 8 { // guest time is already counted in user
			break
		}
		s.total += n
		if i != 3 && i != 4 {
			s.busy += n
		}
	}
	return s
}

// busySince is the busy fraction between s0 and s (0 if unknown).
func (s cpuSample) busySince(s0 cpuSample) float64 {
	if s.total <= s0.total || s0.total == 0 {
		return 0
	}
	return float64(s.busy-s0.busy) / float64(s.total-s0.total)
}
