package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Executor does a job's work; the node implements it.
type Executor interface {
	// Begin prepares run number run of job id before its listing (a
	// resumed run waits for the node's members; a pinned job records its
	// prefix and replica target on every member).
	Begin(ctx context.Context, id string, run int, spec Spec) error
	// List calls fn for every object under bucket/prefix at the origin.
	List(ctx context.Context, bucket, prefix string, fn func(Object) error) error
	// Warm brings every chunk of obj where spec wants it for run number
	// run of job id, calling report once per chunk (from any goroutine,
	// never after Warm returned).
	Warm(ctx context.Context, id string, run int, spec Spec, obj Object, report func(Chunk)) error
}

// Store keeps job records durably; *catalog.Catalog implements it.
type Store interface {
	PutJob(ctx context.Context, id string, rec []byte) error
	Job(ctx context.Context, id string) ([]byte, error)
	Jobs(ctx context.Context, fn func(id string, rec []byte) bool) error
	PutJobItem(ctx context.Context, id, item string, rec []byte) error
	JobItems(ctx context.Context, id string, fn func(item string, rec []byte) bool) error
}

// Peers reaches the jobs of the other cluster members (nil: a node alone).
type Peers interface {
	// Jobs returns the summaries of the jobs the other members run.
	Jobs(ctx context.Context) ([]Job, error)
	// Job asks the other members for job id; ok is false if none has it.
	Job(ctx context.Context, id string) (j Job, ok bool, err error)
	// Cancel tells every other member to cancel runs up to run of job id;
	// ok reports that one of them ran it.
	Cancel(ctx context.Context, id string, run int) (ok bool, err error)
}

// Config tunes a Manager. Zero fields take the defaults.
type Config struct {
	// ObjectConcurrency is how many objects a job warms at once (default
	// 4; each object's chunks run in parallel inside the executor).
	ObjectConcurrency int
	// Attempts is how often an object is tried before it is listed as
	// failed (default 4).
	Attempts int
	// Backoff is the wait before the second attempt, doubled for each
	// next one up to MaxBackoff (defaults 1 s and 30 s).
	Backoff, MaxBackoff time.Duration
	// SaveEvery is how often a running job's progress is written to the
	// store (default 1 s: what another node's `shoal jobs` lags by at
	// most, and what a crash loses, which resume recovers anyway).
	SaveEvery time.Duration
}

// Defaults.
const (
	DefaultObjectConcurrency = 4
	DefaultAttempts          = 4
	DefaultBackoff           = time.Second
	DefaultMaxBackoff        = 30 * time.Second
	DefaultSaveEvery         = time.Second
	// cancelMemory is how long a cancelled job's ID is remembered so that
	// late chunk requests for it are refused.
	cancelMemory = time.Hour
	// maxLocalListed bounds the jobs one node reports to a peer (its most
	// recent ones): the summaries must fit one transfer metadata answer.
	maxLocalListed = 64
)

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.ObjectConcurrency < 0 || c.Attempts < 0 || c.Backoff < 0 || c.MaxBackoff < 0 || c.SaveEvery < 0 {
		errs = append(errs, errors.New("jobs: negative setting"))
	}
	if c.MaxBackoff != 0 && c.Backoff > c.MaxBackoff {
		errs = append(errs, fmt.Errorf("jobs: Backoff %s above MaxBackoff %s", c.Backoff, c.MaxBackoff))
	}
	return errors.Join(errs...)
}

func (c *Config) defaults() {
	if c.ObjectConcurrency == 0 {
		c.ObjectConcurrency = DefaultObjectConcurrency
	}
	if c.Attempts == 0 {
		c.Attempts = DefaultAttempts
	}
	if c.Backoff == 0 {
		c.Backoff = DefaultBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(DefaultMaxBackoff, c.Backoff)
	}
	if c.SaveEvery == 0 {
		c.SaveEvery = DefaultSaveEvery
	}
}

// Option configures a Manager.
type Option func(*Manager)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(m *Manager) { m.log = l } }

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(m *Manager) { m.now = now } }

// WithPeers lets the manager see and cancel the other members' jobs.
func WithPeers(p Peers) Option { return func(m *Manager) { m.peers = p } }

var errCancelled = errors.New("jobs: cancelled")

// ErrStopping is the cause of a run's context when its node stops (the
// job resumes at the next start): an executor may let the chunk reads in
// flight finish rather than waste what they read.
var ErrStopping = errors.New("jobs: node stopping")

// Manager runs this node's jobs and answers for them.
type Manager struct {
	cfg   Config
	exec  Executor
	store Store
	peers Peers
	self  string
	log   *slog.Logger
	now   func() time.Time

	base context.Context // parent of every run; cancelled when Run returns
	stop context.CancelCauseFunc
	wg   sync.WaitGroup // the runs

	mu        sync.Mutex // guards runs, cancelled, parts, stopped
	runs      map[string]*run
	cancelled map[string]cancelMark // job ID -> the run cancelled
	parts     map[string]map[*part]context.CancelCauseFunc
	stopped   bool
}

// New returns a manager for the node named self (its peer ID).
func New(cfg Config, self string, exec Executor, store Store, opts ...Option) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if exec == nil || store == nil {
		return nil, errors.New("jobs: New needs an executor and a store")
	}
	cfg.defaults()
	m := &Manager{cfg: cfg, exec: exec, store: store, self: self, log: slog.New(slog.DiscardHandler), now: time.Now,
		runs: make(map[string]*run), cancelled: make(map[string]cancelMark), parts: make(map[string]map[*part]context.CancelCauseFunc)}
	for _, o := range opts {
		o(m)
	}
	m.log = m.log.With("component", "jobs")
	m.base, m.stop = context.WithCancelCause(context.Background())
	return m, nil
}

// Run resumes the jobs this node was running when it stopped, then waits
// for ctx to end; it stops every run (their records stay live, so the
// next Run resumes them) and returns once they have.
func (m *Manager) Run(ctx context.Context) error {
	var resume []Job
	err := m.store.Jobs(ctx, func(id string, rec []byte) bool {
		var j Job
		if json.Unmarshal(rec, &j) == nil && j.State.Live() {
			resume = append(resume, j)
		}
		return true
	})
	if err != nil && ctx.Err() == nil {
		m.log.Warn("reading job records failed; nothing resumed", "err", err)
	}
	for _, j := range resume {
		m.log.Info("resuming job", "job", j.ID, "bucket", j.Spec.Bucket, "prefix", j.Spec.Prefix)
		m.launch(j)
	}
	<-ctx.Done()
	m.mu.Lock()
	m.stopped = true
	m.mu.Unlock()
	m.stop(ErrStopping)
	m.wg.Wait()
	return nil
}

// Start starts a job for spec, or resumes this node's unfinished job of
// the same spec (cancelled, failed or still running), and returns it.
func (m *Manager) Start(ctx context.Context, spec Spec) (Job, error) {
	if err := spec.Validate(); err != nil {
		return Job{}, err
	}
	m.mu.Lock()
	for _, r := range m.runs {
		if r.snapshot().Spec == spec {
			m.mu.Unlock()
			return r.snapshot(), nil
		}
	}
	m.mu.Unlock()
	var found *Job
	if err := m.store.Jobs(ctx, func(id string, rec []byte) bool {
		var j Job
		if json.Unmarshal(rec, &j) == nil && j.Spec == spec && j.State != StateDone && j.Node == m.self {
			found = &j
			return false
		}
		return true
	}); err != nil {
		return Job{}, fmt.Errorf("jobs: start: %w", err)
	}
	j := Job{ID: newID(), Spec: spec, Node: m.self, Created: m.now()}
	if found != nil {
		j = *found
	}
	j.State, j.Error, j.Finished, j.Updated = StateListing, "", time.Time{}, m.now()
	m.mu.Lock()
	_, running := m.runs[j.ID]
	m.mu.Unlock()
	if running {
		return m.LocalJob(ctx, j.ID)
	}
	if err := m.save(ctx, j); err != nil {
		return Job{}, err
	}
	if !m.launch(j) {
		return Job{}, ErrClosed
	}
	return j, nil
}

func (m *Manager) launch(j Job) bool {
	ctx, cancel := context.WithCancelCause(m.base)
	r := &run{job: j, cancel: cancel, done: make(chan struct{})}
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		cancel(ErrStopping)
		return false
	}
	if _, running := m.runs[j.ID]; running {
		m.mu.Unlock()
		cancel(nil)
		return true // started meanwhile (Start and Run's resume raced)
	}
	m.runs[j.ID] = r
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		defer close(r.done)
		m.execute(ctx, r)
		m.mu.Lock()
		delete(m.runs, j.ID)
		m.mu.Unlock()
	}()
	return true
}

func (m *Manager) save(ctx context.Context, j Job) error {
	b, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("jobs: encode %s: %w", j.ID, err)
	}
	if err := m.store.PutJob(ctx, j.ID, b); err != nil {
		return fmt.Errorf("jobs: save %s: %w", j.ID, err)
	}
	return nil
}

// Local returns this node's jobs, most recent first (live figures for
// running ones).
func (m *Manager) Local(ctx context.Context) ([]Job, error) {
	var out []Job
	err := m.store.Jobs(ctx, func(id string, rec []byte) bool {
		var j Job
		if json.Unmarshal(rec, &j) == nil {
			out = append(out, j)
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: list: %w", err)
	}
	m.mu.Lock()
	for i, j := range out {
		if r := m.runs[j.ID]; r != nil {
			out[i] = r.snapshot()
		}
	}
	m.mu.Unlock()
	for i := range out {
		out[i] = m.orphaned(out[i])
	}
	slices.SortFunc(out, func(a, b Job) int { return b.Created.Compare(a.Created) })
	return out, nil
}

// orphaned reports a stored live job that no run of this process holds
// as what it is: interrupted (it resumes when its node's manager runs).
func (m *Manager) orphaned(j Job) Job {
	if !j.State.Live() {
		return j
	}
	m.mu.Lock()
	_, running := m.runs[j.ID]
	m.mu.Unlock()
	if !running {
		j.Rate, j.ETASeconds = 0, 0
	}
	return j
}

// LocalSummaries is Local without failure lists, at most maxLocalListed:
// what this node tells a peer.
func (m *Manager) LocalSummaries(ctx context.Context) ([]Job, error) {
	js, err := m.Local(ctx)
	if err != nil {
		return nil, err
	}
	if len(js) > maxLocalListed {
		js = js[:maxLocalListed]
	}
	for i := range js {
		js[i] = js[i].Summary()
	}
	return js, nil
}

// LocalJob returns this node's job id, or ErrNotFound.
func (m *Manager) LocalJob(ctx context.Context, id string) (Job, error) {
	m.mu.Lock()
	r := m.runs[id]
	m.mu.Unlock()
	if r != nil {
		return r.snapshot(), nil
	}
	b, err := m.store.Job(ctx, id)
	if err != nil {
		return Job{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	var j Job
	if err := json.Unmarshal(b, &j); err != nil {
		return Job{}, fmt.Errorf("jobs: record %s: %w", id, err)
	}
	return m.orphaned(j), nil
}

// List returns the jobs of every member, this node's first, each group
// most recent first. An unreachable peer is logged, not fatal.
func (m *Manager) List(ctx context.Context) ([]Job, error) {
	out, err := m.Local(ctx)
	if err != nil {
		return nil, err
	}
	if m.peers == nil {
		return out, nil
	}
	remote, err := m.peers.Jobs(ctx)
	if err != nil {
		m.log.Debug("asking peers for their jobs", "err", err)
	}
	seen := make(map[string]bool, len(out))
	for _, j := range out {
		seen[j.ID] = true
	}
	slices.SortStableFunc(remote, func(a, b Job) int { return b.Created.Compare(a.Created) })
	for _, j := range remote {
		if !seen[j.ID] {
			seen[j.ID] = true
			out = append(out, j)
		}
	}
	return out, nil
}

// Get returns job id from this node or, failing that, from the member
// that runs it.
func (m *Manager) Get(ctx context.Context, id string) (Job, error) {
	j, err := m.LocalJob(ctx, id)
	if err == nil || !errors.Is(err, ErrNotFound) || m.peers == nil {
		return j, err
	}
	j, ok, perr := m.peers.Job(ctx, id)
	switch {
	case ok:
		return j, nil
	case perr != nil:
		return Job{}, fmt.Errorf("%w: %s (peers: %w)", ErrNotFound, id, perr)
	}
	return Job{}, err
}

// Cancel stops job id on every node: its run here if this node runs it,
// the chunk work other members do for it, and its run on the member that
// runs it.
func (m *Manager) Cancel(ctx context.Context, id string) (Job, error) {
	j, err := m.Get(ctx, id)
	if err != nil {
		return Job{}, err
	}
	found := m.CancelLocal(ctx, id, j.Runs)
	if m.peers != nil {
		ok, err := m.peers.Cancel(ctx, id, j.Runs)
		if err != nil {
			m.log.Debug("telling peers to cancel", "job", id, "err", err)
		}
		found = found || ok
	}
	if !found {
		return Job{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return m.Get(ctx, id)
}

// cancelMark remembers a cancelled job's run.
type cancelMark struct {
	run int
	at  time.Time
}

// CancelLocal cancels job id's runs up to run on this node (waiting until
// it has recorded the cancel) and the work this node does for them as a
// member; it reports whether this node runs or ran that job. A later run
// (the job resumed) is not refused.
func (m *Manager) CancelLocal(ctx context.Context, id string, run int) bool {
	m.mu.Lock()
	if c, ok := m.cancelled[id]; !ok || c.run < run {
		m.cancelled[id] = cancelMark{run: run, at: m.now()}
	}
	for k, c := range m.cancelled {
		if m.now().Sub(c.at) > cancelMemory {
			delete(m.cancelled, k)
		}
	}
	for p, c := range m.parts[id] {
		if p.run <= run {
			c(errCancelled)
		}
	}
	r := m.runs[id]
	if r != nil && r.snapshot().Runs > run {
		r = nil // a newer run than the one cancelled
	}
	m.mu.Unlock()
	if r != nil {
		r.cancel(errCancelled)
		select {
		case <-r.done:
		case <-ctx.Done():
		}
		return true
	}
	b, err := m.store.Job(ctx, id)
	if err != nil {
		return false
	}
	var j Job
	if json.Unmarshal(b, &j) == nil && j.State.Live() {
		// Recorded live but not running here (its run ended with the
		// process): record the cancel so that no restart resumes it.
		j.State, j.Updated, j.Rate, j.ETASeconds = StateCancelled, m.now(), 0, 0
		_ = m.save(ctx, j)
	}
	return true
}

// part is chunk work for one run of a job.
type part struct{ run int }

// Participate registers chunk work this node does for run number run of
// another member's job id: the returned context ends when that run is
// cancelled (or ctx ends); done must be called when the work is over. A
// run cancelled recently is refused.
func (m *Manager) Participate(ctx context.Context, id string, run int) (context.Context, func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.cancelled[id]; ok && run <= c.run {
		return nil, nil, fmt.Errorf("%w: job %s run %d", errCancelled, id, run)
	}
	pctx, cancel := context.WithCancelCause(ctx)
	key := &part{run: run}
	if m.parts[id] == nil {
		m.parts[id] = make(map[*part]context.CancelCauseFunc)
	}
	m.parts[id][key] = cancel
	return pctx, func() {
		m.mu.Lock()
		delete(m.parts[id], key)
		if len(m.parts[id]) == 0 {
			delete(m.parts, id)
		}
		m.mu.Unlock()
		cancel(nil)
	}, nil
}

// IsCancelled reports err as the result of a cancelled job.
func IsCancelled(err error) bool { return errors.Is(err, errCancelled) }

// Wait blocks until job id's run on this node ends (at once if none).
func (m *Manager) Wait(ctx context.Context, id string) {
	m.mu.Lock()
	r := m.runs[id]
	m.mu.Unlock()
	if r == nil {
		return
	}
	select {
	case <-r.done:
	case <-ctx.Done():
	}
}

// Live returns the jobs running on this node now (status).
func (m *Manager) Live() []Job {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Job, 0, len(m.runs))
	for _, r := range m.runs {
		out = append(out, r.snapshot().Summary())
	}
	slices.SortFunc(out, func(a, b Job) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
