package testenv

import (
	"net"
	"net/netip"
	"strconv"
	"testing"

	"github.com/miekg/dns"
)

func TestDNSAnswersWhatWasSet(t *testing.T) {
	d := StartDNS(t)
	d.Set("svc.test", netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("fd00::1"))
	ask := func(proto string, qtype uint16, name string) *dns.Msg {
		t.Helper()
		c := &dns.Client{Net: proto}
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), qtype)
		r, _, err := c.Exchange(m, d.Addr)
		if err != nil {
			t.Fatalf("%s query %s: %v", proto, name, err)
		}
		return r
	}
	for _, proto := range []string{"udp", "tcp"} {
		r := ask(proto, dns.TypeA, "SVC.test") // names are case-insensitive
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 {
			t.Fatalf("%s A: rcode %d, answer %v; want two A records", proto, r.Rcode, r.Answer)
		}
		for _, rr := range r.Answer {
			if rr.Header().Ttl != 1 {
				t.Fatalf("%s A: TTL %d, want 1", proto, rr.Header().Ttl)
			}
		}
		if r := ask(proto, dns.TypeAAAA, "svc.test"); len(r.Answer) != 1 {
			t.Fatalf("%s AAAA: answer %v, want one record", proto, r.Answer)
		}
		if r := ask(proto, dns.TypeA, "other.test"); r.Rcode != dns.RcodeNameError {
			t.Fatalf("%s unknown name: rcode %d, want NXDOMAIN", proto, r.Rcode)
		}
	}
	if n := d.Queries("svc.test."); n != 4 {
		t.Fatalf("Queries = %d, want 4", n)
	}

	d.SetTruncateUDP(true)
	if r := ask("udp", dns.TypeA, "svc.test"); !r.Truncated || len(r.Answer) != 0 {
		t.Fatalf("truncated UDP: %v", r)
	}
	if r := ask("tcp", dns.TypeA, "svc.test"); r.Truncated || len(r.Answer) != 2 {
		t.Fatalf("TCP while UDP truncates: %v", r)
	}

	d.SetTruncateUDP(false)
	d.Set("svc.test", netip.MustParseAddr("127.0.0.3")) // replaces the answer
	if r := ask("udp", dns.TypeA, "svc.test"); r.Truncated || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "127.0.0.3" {
		t.Fatalf("replaced answer: %v", r)
	}
	d.Set("svc.test")
	if r := ask("tcp", dns.TypeA, "svc.test"); r.Rcode != dns.RcodeNameError {
		t.Fatalf("removed name: rcode %d, want NXDOMAIN", r.Rcode)
	}
}

func TestFreePortIsFreeOnEveryAddress(t *testing.T) {
	hosts := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}
	port := FreePort(t, hosts...)
	for _, h := range hosts {
		ln, err := net.Listen("tcp", net.JoinHostPort(h, strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("port %d not free on %s: %v", port, h, err)
		}
		ln.Close()
	}
}
