package jobs

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors.
var (
	// ErrNotFound: no job with that ID on any node asked.
	ErrNotFound = errors.New("jobs: no such job")
	// ErrInvalid: a bad spec (empty bucket, negative replicas, ...).
	ErrInvalid = errors.New("jobs: invalid job")
	// ErrClosed: the manager has stopped.
	ErrClosed = errors.New("jobs: manager stopped")
)

// Spec is what a job does.
type Spec struct {
	Bucket string `json:"bucket"`
	Prefix string `json:"prefix"`
	// Local also stores every chunk on the node that runs the job (not
	// only on the chunks' home nodes).
	Local bool `json:"local,omitempty"`
	// Pin pins what the job warms (never evicted until unpinned).
	Pin bool `json:"pin,omitempty"`
	// Replicas is the number of copies of every chunk kept in the cluster
	// (with Pin; 0 or 1: the home's copy only).
	Replicas int `json:"replicas,omitempty"`
}

// MaxReplicas bounds a replica target: more copies than this is a
// broadcast, not a cache policy.
const MaxReplicas = 16

// Validate checks a spec.
func (s Spec) Validate() error {
	switch {
	case s.Bucket == "":
		return fmt.Errorf("%w: empty bucket", ErrInvalid)
	case s.Replicas < 0 || s.Replicas > MaxReplicas:
		return fmt.Errorf("%w: replicas %d (want 0..%d)", ErrInvalid, s.Replicas, MaxReplicas)
	case s.Replicas > 1 && !s.Pin:
		return fmt.Errorf("%w: --replicas needs --pin (unpinned copies are evicted at will)", ErrInvalid)
	}
	return nil
}

// State is where a job is in its life.
type State string

// States. Listing and Running are live; the others are final (a Cancelled
// or Failed job may be started again: it resumes).
const (
	StateListing   State = "listing"
	StateRunning   State = "running"
	StateDone      State = "done"
	StateFailed    State = "failed" // finished, some objects failed (see Failures), or listing failed
	StateCancelled State = "cancelled"
)

// Live reports a job still at work.
func (s State) Live() bool { return s == StateListing || s == StateRunning }

// Progress counts a job's work. Bytes are logical (object bytes), by the
// source the chunk's first copy came from.
type Progress struct {
	// Totals, known once Listed.
	Listed  bool  `json:"listed"`
	Objects int64 `json:"objects"`
	Bytes   int64 `json:"bytes"`

	ObjectsDone   int64 `json:"objects_done"`
	ObjectsFailed int64 `json:"objects_failed"`
	BytesDone     int64 `json:"bytes_done"`
	Chunks        int64 `json:"chunks_done"`

	BytesPeer   int64 `json:"bytes_peer"`   // copied from another node
	BytesOrigin int64 `json:"bytes_origin"` // read from the origin
	BytesCached int64 `json:"bytes_cached"` // already held where it belongs
	// OriginBytes is every byte read from the origin for the job, replica
	// copies included (BytesOrigin counts each chunk once).
	OriginBytes int64 `json:"origin_bytes"`
}

func (p *Progress) add(c Chunk) {
	p.Chunks++
	p.BytesDone += c.Bytes
	switch c.Source {
	case SourceOrigin:
		p.BytesOrigin += c.Bytes
	case SourcePeer:
		p.BytesPeer += c.Bytes
	default:
		p.BytesCached += c.Bytes
	}
	p.OriginBytes += c.OriginBytes
}

// Failure is an object that failed after every attempt.
type Failure struct {
	Key      string `json:"key"`
	Reason   string `json:"reason"`
	Attempts int    `json:"attempts"`
}

// Job is a job's record: what it does, where it is, what it did.
type Job struct {
	ID    string `json:"id"`
	Spec  Spec   `json:"spec"`
	State State  `json:"state"`
	// Node is the peer ID (or name) of the node that runs the job.
	Node     string    `json:"node"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
	Finished time.Time `json:"finished,omitzero"`
	// Runs counts the times the job was started or resumed.
	Runs int `json:"runs"`
	Progress
	// Amplification is OriginBytes / BytesDone over the job's whole life
	// (all runs): 1.00 when each chunk left the origin once, 0 when the
	// cluster held everything already.
	Amplification float64 `json:"amplification"`
	// Rate is bytes per second over the current run; ETA is the time left
	// at that rate (0 when unknown or finished).
	Rate       float64 `json:"rate"`
	ETASeconds float64 `json:"eta_seconds"`
	// Failures lists failed objects (at most MaxFailuresListed).
	Failures []Failure `json:"failures,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// MaxFailuresListed bounds the failures a job record carries (the count is
// in ObjectsFailed): a job over a million objects against a broken origin
// must not grow a record of megabytes.
const MaxFailuresListed = 100

// Summary is the job without its failure list (what peers send each other).
func (j Job) Summary() Job {
	j.Failures = nil
	return j
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Object is one object to warm.
type Object struct {
	Key  string `json:"key"`
	ETag string `json:"etag"`
	Size int64  `json:"size"`
}

// Source is where a chunk's first copy came from.
type Source string

// Sources.
const (
	SourceCached Source = "cached"
	SourcePeer   Source = "peer"
	SourceOrigin Source = "origin"
)

// Chunk reports one chunk warmed.
type Chunk struct {
	Bytes  int64
	Source Source
	// OriginBytes is what the job's reads of this chunk took from the
	// origin (its replicas included).
	OriginBytes int64
}

// item is a job's record of one finished object (resume).
type item struct {
	ETag   string `json:"e"`
	Done   bool   `json:"d,omitempty"`
	Size   int64  `json:"s"`
	Chunks int64  `json:"c"`
	Origin int64  `json:"o,omitempty"`
	Peer   int64  `json:"p,omitempty"`
	Cached int64  `json:"h,omitempty"`
	OBytes int64  `json:"ob,omitempty"`
	Reason string `json:"r,omitempty"`
	Tries  int    `json:"t,omitempty"`
}
