package gateway

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestStreamWriterSendsAtMostTheLength(t *testing.T) {
	rec := httptest.NewRecorder()
	sw := &streamWriter{w: rec, rctl: http.NewResponseController(rec), left: 10}
	if n, err := sw.Write([]byte("hello")); n != 5 || err != nil {
		t.Fatalf("first write: %d %v", n, err)
	}
	if !rec.Flushed {
		t.Error("not flushed after the first write of a longer body")
	}
	// A backend offering more than the response length: the excess is cut
	// and reported, never sent.
	if n, err := sw.Write([]byte(" world!!")); n != 5 || !errors.Is(err, errStreamFull) {
		t.Fatalf("overlong write: %d %v", n, err)
	}
	if n, err := sw.Write([]byte("x")); n != 0 || !errors.Is(err, errStreamFull) {
		t.Fatalf("write when full: %d %v", n, err)
	}
	if got := rec.Body.String(); got != "hello worl" || sw.left != 0 || sw.werr != nil {
		t.Fatalf("sent %q, left %d, werr %v", got, sw.left, sw.werr)
	}
}

type brokenConn struct{ *httptest.ResponseRecorder }

var errBrokenConn = errors.New("connection reset")

func (brokenConn) Write([]byte) (int, error) { return 0, errBrokenConn }

func TestStreamWriterRecordsClientErrors(t *testing.T) {
	w := brokenConn{httptest.NewRecorder()}
	sw := &streamWriter{w: w, rctl: http.NewResponseController(w), left: 10}
	if _, err := sw.Write([]byte("abc")); !errors.Is(err, errBrokenConn) || !errors.Is(sw.werr, errBrokenConn) {
		t.Fatalf("write to a broken client: %v (recorded %v)", err, sw.werr)
	}
	if _, err := sw.Write([]byte("abc")); !errors.Is(err, errBrokenConn) {
		t.Fatalf("second write: %v", err)
	}
}

func TestStreamWriterSendsAWholeBodyWithoutFlushing(t *testing.T) {
	rec := httptest.NewRecorder()
	sw := &streamWriter{w: rec, rctl: http.NewResponseController(rec), left: 5}
	if n, err := sw.Write([]byte("hello")); n != 5 || err != nil {
		t.Fatalf("write: %d %v", n, err)
	}
	if rec.Flushed || rec.Body.String() != "hello" {
		t.Fatalf("flushed %v, body %q", rec.Flushed, rec.Body.String())
	}
}
