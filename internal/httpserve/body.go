package httpserve

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// serveWithDeadlines serves r with a progress deadline on its body and on
// the response: every read of the body and every write of the response
// must complete within BodyTimeout, counted from when it starts. These are
// connection deadlines; net/http itself clears the read deadline once the
// body has ended and the write deadline once the response is finished, so
// they never reach work done after the body or the next request.
func (s *Server) serveWithDeadlines(h http.Handler, w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &progressBody{ReadCloser: r.Body, s: s, rc: rc}
	}
	h.ServeHTTP(&progressWriter{ResponseWriter: w, s: s, rc: rc}, r)
	// What the server flushes after the handler gets a fresh bound, not
	// the one of the last Write, however long ago that was.
	_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.BodyTimeout))
}

// stalled records a cut body and returns the error to hand the handler.
func (s *Server) stalled(direction string, err error) error {
	s.m.bodyTimeouts.WithLabelValues(direction).Inc()
	if n, ok := s.stalls.allow(); ok {
		s.log.Info("body stalled: connection closed", "direction", direction, "timeout", s.cfg.BodyTimeout, "cut", n)
	}
	return fmt.Errorf("%w: no progress for %s (%s): %w", ErrBodyTimeout, s.cfg.BodyTimeout, direction, err)
}

// progressBody extends the connection's read deadline on every Read.
type progressBody struct {
	io.ReadCloser
	s    *Server
	rc   *http.ResponseController
	done bool // the body returned an error or EOF: no more deadlines
}

func (b *progressBody) Read(p []byte) (int, error) {
	if b.done {
		return b.ReadCloser.Read(p)
	}
	_ = b.rc.SetReadDeadline(time.Now().Add(b.s.cfg.BodyTimeout))
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.done = true
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return n, b.s.stalled("request", err)
		}
	}
	return n, err
}

// progressWriter extends the connection's write deadline on every Write
// and Flush. Unwrap keeps http.ResponseController working through it.
type progressWriter struct {
	http.ResponseWriter
	s  *Server
	rc *http.ResponseController
}

func (w *progressWriter) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.s.cfg.BodyTimeout))
	n, err := w.ResponseWriter.Write(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		err = w.s.stalled("response", err)
	}
	return n, err
}

// FlushError is what http.ResponseController.Flush calls.
func (w *progressWriter) FlushError() error {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.s.cfg.BodyTimeout))
	err := w.rc.Flush()
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		err = w.s.stalled("response", err)
	}
	return err
}

func (w *progressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
