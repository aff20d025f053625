package swarm

// This file owns the reader: a process started in a node's namespace that
// waits for a common start time, GETs one URL, hashes the body as it
// streams, and prints one JSON line with its timings. The test binary plays
// the reader when ReaderEnv is set (see TestMain), so no extra binary is
// built.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// ReaderEnv carries a ReadSpec (JSON) to a reader process.
const ReaderEnv = "SHOAL_SWARM_READER"

// ReadSpec is one reader's job.
type ReadSpec struct {
	URL string `json:"url"`
	// StartAt (Unix nanoseconds) is when the GET is sent; all readers of
	// a run share it, so they start together whatever their start-up cost.
	StartAt int64 `json:"start_at"`
	// Timeout bounds the whole read.
	Timeout time.Duration `json:"timeout"`
}

// ReadResult is what a reader saw. Times are Unix nanoseconds.
type ReadResult struct {
	Status    int    `json:"status"`
	Bytes     int64  `json:"bytes"`
	SHA256    string `json:"sha256"`
	Start     int64  `json:"start"`
	FirstByte int64  `json:"first_byte"`
	End       int64  `json:"end"`
	// Marks are the times the read passed each progressMark bytes: where
	// a slow read lost its time.
	Marks []int64 `json:"marks,omitempty"`
	Err   string  `json:"err,omitempty"`
}

// progressMark is the step of ReadResult.Marks.
const progressMark = 16 << 20

// Seconds is the read's duration from Start to End.
func (r ReadResult) Seconds() float64 { return float64(r.End-r.Start) / 1e9 }

// Read performs spec and never panics; failures are in ReadResult.Err.
func Read(ctx context.Context, spec ReadSpec) ReadResult {
	var res ReadResult
	if spec.URL == "" {
		res.Err = "no url"
		return res
	}
	if spec.Timeout <= 0 {
		spec.Timeout = 10 * time.Minute
	}
	if d := time.Until(time.Unix(0, spec.StartAt)); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			res.Err = ctx.Err().Error()
			return res
		}
	}
	ctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, spec.URL, nil)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	tr := &http.Transport{DisableCompression: true, Proxy: nil}
	defer tr.CloseIdleConnections()
	res.Start = time.Now().UnixNano()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		res.End = time.Now().UnixNano()
		res.Err = err.Error()
		return res
	}
	defer resp.Body.Close()
	res.Status = resp.StatusCode
	h := sha256.New()
	buf := make([]byte, 256<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if res.FirstByte == 0 {
				res.FirstByte = time.Now().UnixNano()
			}
			h.Write(buf[:n])
			if (res.Bytes+int64(n))/progressMark > res.Bytes/progressMark {
				res.Marks = append(res.Marks, time.Now().UnixNano())
			}
			res.Bytes += int64(n)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			res.Err = err.Error()
			break
		}
	}
	res.End = time.Now().UnixNano()
	res.SHA256 = hex.EncodeToString(h.Sum(nil))
	if res.Status != http.StatusOK && res.Err == "" {
		res.Err = fmt.Sprintf("status %d", res.Status)
	}
	return res
}

// ReaderMain runs a reader whose spec is the JSON in specJSON and writes its
// result as one JSON line to w. It returns the process exit code: 0 when
// the result was written (a failed read is reported in it), 2 otherwise.
func ReaderMain(specJSON string, w io.Writer) int {
	var spec ReadSpec
	var res ReadResult
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		res.Err = fmt.Sprintf("bad %s: %v", ReaderEnv, err)
	} else {
		res = Read(context.Background(), spec)
	}
	if err := json.NewEncoder(w).Encode(res); err != nil {
		return 2
	}
	return 0
}
