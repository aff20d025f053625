package testenv

// This file owns picking listen ports shared by several loopback addresses.

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
)

// FreePort returns a TCP port that is free on every one of hosts (IP
// literals such as 127.0.0.2), for processes that must listen on the same
// port at several loopback addresses. It is chosen below the usual
// ephemeral range, so that port-0 listeners of other tests running at the
// same time are not handed it in the meantime.
func FreePort(t testing.TB, hosts ...string) int {
	t.Helper()
	const lo, hi = 20000, 32000 // below Linux's default ephemeral range (32768-60999)
	start := lo + int(rand.Uint64()%uint64(hi-lo))
	for i := range hi - lo {
		port := lo + (start-lo+i)%(hi-lo)
		if portFree(port, hosts) {
			return port
		}
	}
	t.Fatalf("testenv: no TCP port free on all of %s", strings.Join(hosts, ", "))
	return 0
}

func portFree(port int, hosts []string) bool {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for _, h := range hosts {
		ln, err := net.Listen("tcp", net.JoinHostPort(h, fmt.Sprint(port)))
		if err != nil {
			return false
		}
		lns = append(lns, ln)
	}
	return true
}
