package originfetch

import (
	"errors"
	"fmt"
	"time"
)

// Defaults for Policy's zero values. Each was chosen by measurement; the
// figures are in docs/FETCH.md.
const (
	// DefaultSlots bounds origin fetches in flight node-wide. Each holds a
	// chunk in memory (16 x 4 MiB = 64 MiB) and one origin connection; S3
	// serves about 5,500 GETs per second per prefix, far above what 16
	// streams of 4 MiB ask.
	DefaultSlots = 16
	// DefaultSettle is how long a new version's order gate collects
	// arrivals before admitting the lowest index: longer than the spread of
	// one reader's or one peer's simultaneous requests (under a millisecond
	// on an idle node, a few under load), short against an origin fetch
	// (hundreds of milliseconds for 4 MiB). Without it a home's
	// second-window chunk took its one slot before its first-window chunk
	// (the Go scheduler runs the last goroutine started first): S4 first
	// byte 2.4-2.9 s, with it 1.0-2.0 s.
	DefaultSettle = 10 * time.Millisecond
	// DefaultStall is how long a response may deliver nothing (or a
	// request get no answer) before the missing bytes are asked for again:
	// far above the gaps of a moving transfer (a 64 KiB piece every few ms
	// at any useful rate) and above TCP's first retransmission timeouts
	// (200-400 ms), far below the backoffs that follow them.
	DefaultStall = time.Second
	// DefaultMaxResumes bounds the extra requests for one chunk after
	// stalls; an origin that is really down still fails the read.
	DefaultMaxResumes = 3
	// Piece is the buffer an origin body is copied through into the
	// arrival: each piece is hashed and passed on to followers, so it
	// bounds the latency added at a home, not the throughput.
	Piece = 64 << 10
)

// Policy tunes a Fetcher. Zero values take the defaults above.
type Policy struct {
	// Slots bounds origin fetches in flight on this node (default 16).
	Slots int
	// Settle is how long a version's order gate collects arrivals before
	// it admits the first (default 10 ms; negative: admit at once).
	Settle time.Duration
	// Stall is how long a response may deliver nothing, or a request get
	// no answer, before the rest is asked again (default 1 s). A negative
	// Stall turns hedging and resuming off (for origins that hold answers
	// on purpose, as some tests do).
	Stall time.Duration
	// MaxResumes bounds the re-requests of one chunk after stalls
	// (default 3; negative: none).
	MaxResumes int
}

// WithDefaults returns p with zero values replaced by the defaults.
func (p Policy) WithDefaults() Policy {
	if p.Slots == 0 {
		p.Slots = DefaultSlots
	}
	if p.Settle == 0 {
		p.Settle = DefaultSettle
	}
	if p.Stall == 0 {
		p.Stall = DefaultStall
	}
	if p.MaxResumes == 0 {
		p.MaxResumes = DefaultMaxResumes
	}
	return p
}

// Validate checks p after applying defaults.
func (p Policy) Validate() error {
	p = p.WithDefaults()
	var errs []error
	if p.Slots < 1 || p.Slots > 4096 {
		errs = append(errs, fmt.Errorf("origin fetch slots %d outside [1, 4096]", p.Slots))
	}
	if p.Settle > time.Second {
		errs = append(errs, fmt.Errorf("order gate settle %v above 1s", p.Settle))
	}
	if p.Stall > 0 && p.Stall < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("origin stall %v below 10ms", p.Stall))
	}
	if p.MaxResumes > 100 {
		errs = append(errs, fmt.Errorf("origin resumes %d above 100", p.MaxResumes))
	}
	return errors.Join(errs...)
}

func (p Policy) hedges() bool { return p.Stall > 0 }

func (p Policy) resumes() int { return max(p.MaxResumes, 0) }
