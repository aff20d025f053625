package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/jobs"
	"github.com/shoal-cache/shoal/transfer"
)

// Control requests between members (jobs, replica pins, introspection)
// travel as transfer Meta requests whose key starts with ctlKeyTag and
// carries a JSON ctlReq; the answer is a JSON ctlAnswer. They reuse the
// chunk protocol's streams, limits and keep-alives instead of a protocol
// of their own.
const ctlKeyTag byte = 3

// Control operations.
const (
	opWarm      = "warm"      // warm one chunk (Chunk, Pin) for job Job
	opWarmBatch = "warmbatch" // warm chunks Indexes of Chunk's version as their home
	opJobs      = "jobs"      // the member's job summaries
	opJob       = "job"       // one job by ID
	opCancel    = "cancel"    // cancel job Job on the member
	opHas       = "has"       // which chunks [From, To) of Chunk's version the member holds
	opPin       = "pin"       // record Bucket/Prefix as pinned with Replicas
	opUnpin     = "unpin"     // release Bucket/Prefix
	opHeld      = "held"      // how many blocks and bytes the member's store holds
)

// askTimeout bounds one control request to a member that is not a chunk
// warm (those take as long as a chunk's read, bounded by the transfer
// client's fetch timeout).
const askTimeout = 5 * time.Second

type ctlReq struct {
	Op       string  `json:"op"`
	Job      string  `json:"job,omitempty"`
	Run      int     `json:"run,omitempty"`
	Chunk    []byte  `json:"chunk,omitempty"`
	Pin      bool    `json:"pin,omitempty"`
	Home     bool    `json:"home,omitempty"` // warm: the asker counts this node as the chunk's home
	Bucket   string  `json:"bucket,omitempty"`
	Prefix   string  `json:"prefix,omitempty"`
	Replicas int     `json:"replicas,omitempty"`
	From     int64   `json:"from,omitempty"`
	To       int64   `json:"to,omitempty"`
	Indexes  []int64 `json:"idx,omitempty"`
}

// ctlAnswer: Data on success; Code ("cancelled", "notfound", "error") and
// Err otherwise.
type ctlAnswer struct {
	Data json.RawMessage `json:"d,omitempty"`
	Code string          `json:"c,omitempty"`
	Err  string          `json:"e,omitempty"`
}

// remoteErr is a member's refusal of a control request.
type remoteErr struct{ code, msg string }

func (e *remoteErr) Error() string { return "member: " + e.code + ": " + e.msg }

func isRemoteCancel(err error) bool {
	var r *remoteErr
	return errors.As(err, &r) && r.code == "cancelled"
}

func isRemoteNotFound(err error) bool {
	var r *remoteErr
	return errors.As(err, &r) && r.code == "notfound"
}

func encodeCtl(r ctlReq) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if 1+len(b) > transfer.MaxKeySize {
		return nil, fmt.Errorf("node: control request of %d bytes", len(b))
	}
	return append([]byte{ctlKeyTag}, b...), nil
}

func decodeCtl(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("node: bad control answer: %w", err)
	}
	return nil
}

// control sends req to member p and decodes its answer's data into out.
func (n *Node) control(ctx context.Context, p peer.ID, req ctlReq, out any) error {
	if n.cl == nil {
		return errors.New("node: not in a cluster")
	}
	key, err := encodeCtl(req)
	if err != nil {
		return err
	}
	b, err := n.cl.Transfer.Meta(ctx, p, key)
	if err != nil {
		return err
	}
	var a ctlAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("node: bad control answer from %s: %w", p, err)
	}
	if a.Code != "" {
		return &remoteErr{a.Code, a.Err}
	}
	if out == nil {
		return nil
	}
	return decodeCtl(a.Data, out)
}

type memberAnswer struct {
	peer peer.ID
	data json.RawMessage
	err  error
}

// askMembers sends req to every live member at once (askTimeout each).
func (n *Node) askMembers(ctx context.Context, req ctlReq) []memberAnswer {
	if n.cl == nil {
		return nil
	}
	ms := n.cl.Members.Members()
	out := make([]memberAnswer, len(ms))
	var wg sync.WaitGroup
	for i, p := range ms {
		wg.Go(func() {
			actx, cancel := context.WithTimeout(ctx, askTimeout)
			defer cancel()
			var raw json.RawMessage
			err := n.control(actx, p, req, &raw)
			out[i] = memberAnswer{peer: p, data: raw, err: err}
		})
	}
	wg.Wait()
	return out
}

// broadcastPin tells every member to record (or release) a pinned prefix.
func (n *Node) broadcastPin(ctx context.Context, req ctlReq) {
	for _, r := range n.askMembers(ctx, req) {
		if r.err != nil {
			n.log.Warn("member did not record a pin", "peer", r.peer, "op", req.Op, "bucket", req.Bucket, "prefix", req.Prefix, "err", r.err)
		}
	}
}

// serveControl answers a member's control request.
func (h *PeerHandler) serveControl(ctx context.Context, key []byte) ([]byte, error) {
	n := h.n
	var req ctlReq
	if err := json.Unmarshal(key[1:], &req); err != nil {
		return nil, fmt.Errorf("%w: control request: %w", ErrBadKey, err)
	}
	data, err := n.handleControl(ctx, req)
	var a ctlAnswer
	switch {
	case err == nil:
		a.Data, err = json.Marshal(data)
		if err != nil {
			return nil, err
		}
	case jobs.IsCancelled(err):
		a.Code, a.Err = "cancelled", err.Error()
	case errors.Is(err, jobs.ErrNotFound), errors.Is(err, catalog.ErrNotFound):
		a.Code, a.Err = "notfound", err.Error()
	case errors.Is(err, ErrBadKey):
		return nil, err
	default:
		a.Code, a.Err = "error", err.Error()
	}
	b, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	if len(b) > transfer.MaxMetaSize {
		a = ctlAnswer{Code: "error", Err: fmt.Sprintf("answer of %d bytes too large", len(b))}
		b, _ = json.Marshal(a)
	}
	return b, nil
}

func (n *Node) handleControl(ctx context.Context, req ctlReq) (any, error) {
	switch req.Op {
	case opWarm:
		v, i, err := homeChunk(req.Chunk)
		if err != nil {
			return nil, err
		}
		if req.Job == "" {
			return nil, fmt.Errorf("%w: warm without a job", ErrBadKey)
		}
		// The read goes on if the asker leaves (its node stopped or
		// died): what it reads is kept for the job's resume. Only a cancel
		// of the job, or memberWarmTimeout, ends it.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), memberWarmTimeout)
		defer cancel()
		pctx, done, err := n.jobs.Participate(wctx, req.Job, req.Run)
		if err != nil {
			return nil, err
		}
		defer done()
		a, err := n.warmHere(pctx, v, i, req.Pin, req.Home)
		if err != nil && context.Cause(pctx) != nil && jobs.IsCancelled(context.Cause(pctx)) {
			return nil, context.Cause(pctx)
		}
		return a, err
	case opWarmBatch:
		v, i, err := decodeChunkKey(req.Chunk)
		switch {
		case err != nil:
			return nil, err
		case i != 0 || req.Job == "" || len(req.Indexes) == 0 || len(req.Indexes) > warmBatch:
			return nil, fmt.Errorf("%w: warm batch of %d chunks", ErrBadKey, len(req.Indexes))
		}
		if _, _, err := homeChunk(req.Chunk); err != nil {
			return nil, err
		}
		for _, j := range req.Indexes {
			if j < 0 || j >= v.NumChunks() {
				return nil, fmt.Errorf("%w: chunk %d of %d", ErrBadKey, j, v.NumChunks())
			}
		}
		// As for one chunk: the reads go on if the asker leaves.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), memberWarmTimeout)
		defer cancel()
		pctx, done, err := n.jobs.Participate(wctx, req.Job, req.Run)
		if err != nil {
			return nil, err
		}
		defer done()
		as := n.warmHereAll(pctx, v, req.Indexes, req.Pin, req.Home)
		if c := context.Cause(pctx); c != nil && jobs.IsCancelled(c) {
			return nil, c
		}
		return as, nil
	case opJobs:
		return n.jobs.LocalSummaries(ctx)
	case opJob:
		j, err := n.jobs.LocalJob(ctx, req.Job)
		if err != nil {
			return nil, err
		}
		if len(j.Failures) > 20 {
			j.Failures = j.Failures[:20] // the answer must fit a metadata answer
		}
		return j, nil
	case opCancel:
		return n.jobs.CancelLocal(ctx, req.Job, req.Run), nil
	case opHas:
		v, i, err := decodeChunkKey(req.Chunk)
		switch {
		case err != nil:
			return nil, err
		case i != 0:
			return nil, errNotChunk0
		case req.From < 0 || req.To > v.NumChunks() || req.From > req.To || req.To-req.From > maxHasRange:
			return nil, fmt.Errorf("%w: has range [%d, %d) of %d chunks", ErrBadKey, req.From, req.To, v.NumChunks())
		}
		return n.holdsChunks(ctx, v, req.From, req.To), nil
	case opPin:
		if req.Bucket == "" || req.Replicas < 0 || req.Replicas > jobs.MaxReplicas {
			return nil, fmt.Errorf("%w: pin %q replicas %d", ErrBadKey, req.Bucket, req.Replicas)
		}
		err := n.cat.AddPin(ctx, catalog.Pin{Bucket: req.Bucket, Prefix: req.Prefix, Created: n.now(), Replicas: req.Replicas})
		if err == nil {
			n.kickRepair()
		}
		return true, err
	case opUnpin:
		if req.Bucket == "" {
			return nil, fmt.Errorf("%w: unpin without a bucket", ErrBadKey)
		}
		_, err := n.unpinLocal(ctx, req.Bucket, req.Prefix)
		return true, err
	case opHeld:
		st := n.store.Stats()
		return heldAnswer{Blocks: st.Blocks, Bytes: st.Bytes}, nil
	}
	return nil, fmt.Errorf("%w: control op %q", ErrBadKey, req.Op)
}
