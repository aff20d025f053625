package testenv

// This file owns the DNS part: a small authoritative DNS server on a
// loopback port (UDP and TCP) whose answers a test changes while nodes run,
// as a Kubernetes headless service's answer changes when pods come and go.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// dnsTTL is the TTL of every answer: one second, so nothing between the
// server and a node (there is nothing on loopback, but a resolver may
// cache) keeps a removed address for longer than a second.
const dnsTTL = 1

// DNS is a running test DNS server on 127.0.0.1, answering over UDP and
// TCP on one port. It answers A and AAAA queries for the names given to
// Set (NXDOMAIN for any other name; no records for other query types).
type DNS struct {
	// Addr is host:port of the server (UDP and TCP), for
	// --bootstrap-dns-server.
	Addr string

	udp, tcp *dns.Server

	mu          sync.Mutex
	records     map[string][]netip.Addr // canonical name -> addresses; guarded by mu
	queries     map[string]int          // canonical name -> queries seen; guarded by mu
	truncateUDP bool                    // guarded by mu
}

// StartDNS starts a DNS server on a free 127.0.0.1 port. It is stopped when
// the test ends.
func StartDNS(t testing.TB) *DNS {
	t.Helper()
	d := &DNS{records: map[string][]netip.Addr{}, queries: map[string]int{}}
	pc, ln, err := listenUDPAndTCP()
	if err != nil {
		t.Fatalf("testenv: dns: %v", err)
	}
	d.Addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(d.serve)
	d.udp = &dns.Server{PacketConn: pc, Handler: h}
	d.tcp = &dns.Server{Listener: ln, Handler: h}
	var wg sync.WaitGroup
	started := make(chan struct{}, 2)
	for _, srv := range []*dns.Server{d.udp, d.tcp} {
		srv.NotifyStartedFunc = func() { started <- struct{}{} }
		wg.Go(func() { _ = srv.ActivateAndServe() })
	}
	<-started
	<-started
	t.Cleanup(func() {
		err := errors.Join(d.udp.Shutdown(), d.tcp.Shutdown())
		wg.Wait()
		if err != nil {
			t.Errorf("testenv: dns shutdown: %v", err)
		}
	})
	return d
}

// listenUDPAndTCP binds UDP and TCP on one free 127.0.0.1 port.
func listenUDPAndTCP() (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = err // the TCP port is taken: try another UDP port
	}
	return nil, nil, fmt.Errorf("no port free for both UDP and TCP: %w", lastErr)
}

// Set makes name resolve to ips (A records for IPv4, AAAA for IPv6), with
// a TTL of one second, replacing its previous answer. With no ips the name
// no longer exists (NXDOMAIN).
func (d *DNS) Set(name string, ips ...netip.Addr) {
	k := canonical(name)
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(ips) == 0 {
		delete(d.records, k)
		return
	}
	d.records[k] = append([]netip.Addr(nil), ips...)
}

// Queries returns how many questions about name the server has answered
// (A, AAAA and any other type, over UDP and TCP).
func (d *DNS) Queries(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queries[canonical(name)]
}

// SetTruncateUDP makes UDP answers come back empty with the truncated bit
// set, so that resolvers must retry over TCP (what a large answer does).
func (d *DNS) SetTruncateUDP(on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.truncateUDP = on
}

func canonical(name string) string { return dns.CanonicalName(name) }

func (d *DNS) serve(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	d.mu.Lock()
	truncate := udp && d.truncateUDP
	for _, q := range req.Question {
		k := canonical(q.Name)
		d.queries[k]++
		ips, ok := d.records[k]
		if !ok {
			m.Rcode = dns.RcodeNameError
			continue
		}
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: dnsTTL}
		for _, ip := range ips {
			switch {
			case q.Qtype == dns.TypeA && ip.Is4():
				h := hdr
				h.Rrtype = dns.TypeA
				m.Answer = append(m.Answer, &dns.A{Hdr: h, A: ip.AsSlice()})
			case q.Qtype == dns.TypeAAAA && ip.Is6() && !ip.Is4In6():
				h := hdr
				h.Rrtype = dns.TypeAAAA
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: h, AAAA: ip.AsSlice()})
			}
		}
	}
	d.mu.Unlock()
	if truncate {
		m.Answer = nil
		m.Truncated = true
	}
	_ = w.WriteMsg(m)
}
