package routing

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The router's metrics count what a user did: one provide shows as a kept
// key and an announcement on the provider's node, one lookup as one
// observation under its op and result on the reader's.
func TestRouterMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("swarm test")
	}
	key := testKey(t, 7)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var routers []*Router
	var regs []*prometheus.Registry
	for range 3 {
		reg := prometheus.NewRegistry()
		r, err := NewDHT(ctx, newTestHost(t, key, MembershipAuth), Config{}, WithLogger(discardLogger()), WithRegisterer(reg))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		routers, regs = append(routers, r), append(regs, reg)
	}
	for i := 1; i < len(routers); i++ {
		if err := routers[i].Host().Connect(ctx, info(routers[0].Host())); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, "routing tables filled", func() bool {
		for _, r := range routers {
			if r.RoutingTableSize() < 1 {
				return false
			}
		}
		return true
	})

	// Before any lookup, every op's series exists at zero.
	if got := histCount(t, regs[1], "shoal_routing_lookup_duration_seconds", map[string]string{"op": "find_providers", "result": "found"}); got != 0 {
		t.Fatalf("find_providers found before any lookup: %d", got)
	}

	c := chunkCID(42)
	if err := routers[0].Provide(ctx, c); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "provider reports the key announced", func() bool {
		return gaugeValue(t, regs[0], "shoal_routing_provider_keys") == 1 &&
			gaugeValue(t, regs[0], "shoal_routing_provided_keys_total") >= 1
	})
	if v := gaugeValue(t, regs[0], "shoal_routing_provider_online"); v != 1 {
		t.Errorf("provider_online = %v on a connected node, want 1", v)
	}
	var ais int
	eventually(t, 30*time.Second, "provider found", func() bool {
		got, err := routers[1].FindProviders(ctx, c, 1)
		ais = len(got)
		return err == nil && ais == 1
	})
	found := histCount(t, regs[1], "shoal_routing_lookup_duration_seconds", map[string]string{"op": "find_providers", "result": "found"})
	if found < 1 {
		t.Fatalf("find_providers found = %d after a successful lookup", found)
	}
	none := histCount(t, regs[1], "shoal_routing_lookup_duration_seconds", map[string]string{"op": "find_providers", "result": "none"})
	if _, err := routers[1].FindProviders(ctx, chunkCID(4242), 1); err != nil {
		t.Fatal(err)
	}
	if got := histCount(t, regs[1], "shoal_routing_lookup_duration_seconds", map[string]string{"op": "find_providers", "result": "none"}); got != none+1 {
		t.Fatalf("find_providers none = %d after one empty lookup, want %d", got, none+1)
	}
	if _, err := getRecords(ctx, routers[2], testRecord(time.Now().UTC())); err == nil {
		t.Fatal("a record nobody published was found")
	}
	if got := histCount(t, regs[2], "shoal_routing_lookup_duration_seconds", map[string]string{"op": "get_manifest", "result": "none"}); got != 1 {
		t.Fatalf("get_manifest none = %d after one missing record, want 1", got)
	}
}

// metricOf returns the first metric of family name whose labels include want.
func metricOf(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue next
				}
			}
			return m
		}
	}
	t.Fatalf("no metric %s%v", name, want)
	return nil
}

func histCount(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) uint64 {
	t.Helper()
	return metricOf(t, reg, name, labels).GetHistogram().GetSampleCount()
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	m := metricOf(t, reg, name, nil)
	if m.GetGauge() != nil {
		return m.GetGauge().GetValue()
	}
	return m.GetCounter().GetValue()
}
