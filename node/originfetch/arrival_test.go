package originfetch

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/shoal-cache/shoal/internal/content"
)

// TestArrivalFollowers: followers of an origin read get every byte in
// order and then the outcome, while the writer goes on.
func TestArrivalFollowers(t *testing.T) {
	for _, fail := range []bool{false, true} {
		data := make([]byte, 1<<20)
		r := rand.New(rand.NewPCG(3, 3))
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		a := newArrival(content.SHA256, int64(len(data)))
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() {
				var got []byte
				for {
					b, err := a.Next(t.Context(), int64(len(got)))
					if err != nil {
						if err == io.EOF && !bytes.Equal(got, data) {
							err = errors.New("EOF after wrong bytes")
						}
						errs <- err
						return
					}
					got = append(got, b...)
				}
			})
		}
		n := len(data)
		if fail {
			n /= 2
		}
		for off := 0; off < n; off += 10000 {
			if _, err := a.Write(data[off:min(off+10000, n)]); err != nil {
				t.Fatal(err)
			}
		}
		var endErr error
		if fail {
			endErr = errors.New("origin reset")
		}
		blk, err := a.finish(endErr)
		wg.Wait()
		close(errs)
		for e := range errs {
			if fail && e != endErr || !fail && e != io.EOF {
				t.Errorf("fail=%v: follower ended with %v", fail, e)
			}
		}
		if !fail && (err != nil || !blk.CID().Equals(content.Sum(content.SHA256, data))) {
			t.Errorf("finished block: %v %s", err, blk.CID())
		}
		if _, ok := a.Result(); ok == fail {
			t.Errorf("fail=%v: Result ok=%v", fail, ok)
		}
	}
}
