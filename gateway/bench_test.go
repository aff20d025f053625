package gateway

import (
	"io"
	"net/http"
	"testing"
)

// BenchmarkGetObject measures GET through a real HTTP server and client
// over loopback, serving from the in-memory fake: the cost of the gateway
// itself, which must not be the bottleneck of a node.
func BenchmarkGetObject(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{{"4KiB", 4 << 10}, {"64MiB", 64 << 20}} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv(b, false, false)
			e.be.put(testBucket, "obj", make([]byte, bc.size), nil)
			url := e.srv.URL + "/" + testBucket + "/obj"
			client := e.srv.Client()
			buf := make([]byte, 256<<10)
			b.SetBytes(int64(bc.size))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				resp, err := client.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(io.Discard, resp.Body, buf)
				resp.Body.Close()
				if err != nil || n != int64(bc.size) || resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d, %d bytes, %v", resp.StatusCode, n, err)
				}
			}
		})
	}
}
