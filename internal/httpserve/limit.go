package httpserve

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// limitListener accepts at most cap(slots) connections at a time, plus
// cap(reserved) reserved ones; beyond that Accept waits for a Close.
type limitListener struct {
	net.Listener
	slots     chan struct{} // one token per open ordinary connection
	reserved  chan struct{} // one token per open reserved connection
	closed    chan struct{} // closed by Close
	closeOnce sync.Once
	max       int
	m         *metrics
	log       *slog.Logger
	full      *rateLimit // rate-limits the "limit reached" line
	noFDs     *rateLimit // rate-limits the "out of descriptors" line
}

func newLimitListener(ln net.Listener, cfg Config, m *metrics, log *slog.Logger) *limitListener {
	return &limitListener{
		Listener: ln,
		slots:    make(chan struct{}, cfg.MaxConns),
		reserved: make(chan struct{}, cfg.ReservedConns),
		closed:   make(chan struct{}),
		max:      cfg.MaxConns,
		m:        m,
		log:      log,
		full:     &rateLimit{every: logEvery},
		noFDs:    &rateLimit{every: logEvery},
	}
}

// Accept takes a slot (an ordinary one, else a reserved one, else it
// waits), then accepts.
func (l *limitListener) Accept() (net.Conn, error) {
	reserved := false
	select {
	case l.slots <- struct{}{}:
	default:
		l.m.waits.Inc()
		if n, ok := l.full.allow(); ok {
			l.log.Warn("connection limit reached: new connections wait until one closes", "limit", l.max, "waits", n)
		}
		select {
		case l.slots <- struct{}{}:
		case l.reserved <- struct{}{}:
			reserved = true
		case <-l.closed:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		l.release(reserved)
		if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
			if n, ok := l.noFDs.allow(); ok {
				l.log.Warn("out of file descriptors: cannot accept connections (lower the connection limits or raise the process's limit)", "err", err, "failures", n)
			}
		}
		return nil, err
	}
	l.m.open.Inc()
	return &limitConn{Conn: c, l: l, reserved: reserved}, nil
}

func (l *limitListener) release(reserved bool) {
	if reserved {
		<-l.reserved
	} else {
		<-l.slots
	}
}

// Close stops Accept, including one waiting for a slot.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// limitConn gives its slot back on the first Close.
type limitConn struct {
	net.Conn
	l        *limitListener
	reserved bool
	once     sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.m.open.Dec()
		c.l.release(c.reserved)
	})
	return err
}

// rateLimit lets one event through per interval and counts the rest.
type rateLimit struct {
	every time.Duration
	mu    sync.Mutex
	last  time.Time // guarded by mu
	count int       // events since the last one let through; guarded by mu
}

// allow records an event and reports whether to log it, with the number
// of events it stands for.
func (r *rateLimit) allow() (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count++
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < r.every {
		return 0, false
	}
	n := r.count
	r.last, r.count = now, 0
	return n, true
}
