package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/shoal-cache/shoal/internal/admin"
	"github.com/shoal-cache/shoal/jobs"
	"github.com/shoal-cache/shoal/node"
)

// The client commands for jobs and introspection: they call the admin API
// and print text for people (a progress bar on a terminal) or --json.

// Follow pacing.
const (
	// pollEvery is how often a followed job is asked for its progress.
	pollEvery = 500 * time.Millisecond
	// plainEvery is how often a followed job prints a line when its output
	// is not a terminal (a log or a pipe).
	plainEvery = 5 * time.Second
)

var errJobUnfinished = errors.New("job did not finish")

func cmdWarm(ctx context.Context, e env, args []string) error {
	var local, pin, detach *bool
	var replicas *int
	c, rest, asJSON, err := clientFlags(e, "warm", "s3://bucket/prefix", args, func(fs *flag.FlagSet) string {
		local = fs.Bool("local", false, "")
		pin = fs.Bool("pin", false, "")
		detach = fs.Bool("detach", false, "")
		replicas = fs.Int("replicas", 0, "")
		return "  --local\n        also keep every chunk on this node (not only on the chunks' home nodes)\n" +
			"  --pin\n        pin what is warmed (kept until 'shoal unpin')\n" +
			"  --replicas N\n        keep N copies of every chunk in the cluster, repaired when a holder leaves (needs --pin)\n" +
			"  --detach\n        print the job ID and return; follow with 'shoal jobs ID --watch'\n\n" +
			"Ctrl-C cancels the job on every node; running the same command again resumes it.\n"
	})
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("%w: warm takes exactly one s3://bucket/prefix", errUsage)
	}
	bucket, prefix, err := admin.ParseS3URL(rest[0])
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if *replicas < 0 || *replicas > jobs.MaxReplicas {
		return fmt.Errorf("%w: --replicas %d: want 0..%d", errUsage, *replicas, jobs.MaxReplicas)
	}
	if *replicas > 1 && !*pin {
		return fmt.Errorf("%w: --replicas needs --pin", errUsage)
	}
	raw, err := c.StartJob(ctx, admin.JobRequest{Bucket: bucket, Prefix: prefix, Local: *local, Pin: *pin, Replicas: *replicas})
	if err != nil {
		return err
	}
	var j jobs.Job
	if err := json.Unmarshal(raw, &j); err != nil {
		return fmt.Errorf("job answer: %w", err)
	}
	if *detach {
		if asJSON {
			return printJSON(e.stdout, raw)
		}
		fmt.Fprintln(e.stdout, j.ID)
		return nil
	}
	return follow(ctx, e, c, j.ID, asJSON, true)
}

// follow shows job id's progress until it ends. With cancelOnStop, the
// end of ctx (Ctrl-C) cancels the job.
func follow(ctx context.Context, e env, c *admin.Client, id string, asJSON, cancelOnStop bool) error {
	w := newProgress(e)
	defer w.close()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	var j jobs.Job
	for {
		raw, err := c.Job(context.WithoutCancel(ctx), id)
		if err != nil {
			return err
		}
		j = jobs.Job{}
		if err := json.Unmarshal(raw, &j); err != nil {
			return fmt.Errorf("job answer: %w", err)
		}
		if !j.State.Live() {
			w.close()
			if asJSON {
				return jobExit(j, printJSON(e.stdout, raw))
			}
			return jobExit(j, printJob(e.stdout, j))
		}
		w.show(j)
		select {
		case <-tick.C:
		case <-ctx.Done():
			w.close()
			if !cancelOnStop {
				return ctx.Err()
			}
			fmt.Fprintf(e.stderr, "cancelling job %s on every node (run the same command again to resume)\n", id)
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			raw, err := c.CancelJob(cctx, id)
			cancel()
			if err != nil {
				return err
			}
			if asJSON {
				_ = printJSON(e.stdout, raw)
			} else if json.Unmarshal(raw, &j) == nil {
				_ = printJob(e.stdout, j)
			}
			return fmt.Errorf("%w: cancelled", errJobUnfinished)
		}
	}
}

// jobExit turns a finished job into the command's outcome.
func jobExit(j jobs.Job, err error) error {
	switch {
	case err != nil:
		return err
	case j.State == jobs.StateDone:
		return nil
	}
	return fmt.Errorf("%w: job %s %s", errJobUnfinished, j.ID, j.State)
}

// progress draws a followed job: a bar on a terminal, else a line every
// plainEvery.
type progress struct {
	w      io.Writer
	bar    *progressbar.ProgressBar
	tty    bool
	last   time.Time
	closed bool
}

func newProgress(e env) *progress {
	p := &progress{w: e.stderr}
	if f, ok := e.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	return p
}

func (p *progress) show(j jobs.Job) {
	if p.closed {
		return
	}
	src := fmt.Sprintf("peers %s, origin %s, cached %s", human(j.BytesPeer), human(j.BytesOrigin), human(j.BytesCached))
	if !p.tty {
		if time.Since(p.last) < plainEvery {
			return
		}
		p.last = time.Now()
		fmt.Fprintf(p.w, "job %s %s: %s\n", j.ID, j.State, progressLine(j))
		return
	}
	if !j.Listed {
		return
	}
	if p.bar == nil {
		p.bar = progressbar.NewOptions64(max(j.Bytes, 1),
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionFullWidth(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionShowElapsedTimeOnFinish(),
		)
	}
	p.bar.Describe(fmt.Sprintf("%d/%d objects (%s)", j.ObjectsDone, j.Objects, src))
	_ = p.bar.Set64(j.BytesDone)
}

func (p *progress) close() {
	if p.closed {
		return
	}
	p.closed = true
	if p.bar != nil {
		_ = p.bar.Exit()
		fmt.Fprintln(p.w)
	}
}

func progressLine(j jobs.Job) string {
	if !j.Listed {
		return "listing"
	}
	s := fmt.Sprintf("%d/%d objects, %s/%s (peers %s, origin %s, cached %s)",
		j.ObjectsDone, j.Objects, human(j.BytesDone), human(j.Bytes), human(j.BytesPeer), human(j.BytesOrigin), human(j.BytesCached))
	if j.Rate > 0 {
		s += fmt.Sprintf(", %s/s, ETA %s", human(int64(j.Rate)), (time.Duration(j.ETASeconds) * time.Second).String())
	}
	if j.ObjectsFailed > 0 {
		s += fmt.Sprintf(", %d failed", j.ObjectsFailed)
	}
	return s
}

func printJob(w io.Writer, j jobs.Job) error {
	flags := ""
	if j.Spec.Local {
		flags += " --local"
	}
	if j.Spec.Pin {
		flags += " --pin"
	}
	if j.Spec.Replicas > 0 {
		flags += fmt.Sprintf(" --replicas %d", j.Spec.Replicas)
	}
	fmt.Fprintf(w, "job %s: warm s3://%s/%s%s\n", j.ID, j.Spec.Bucket, j.Spec.Prefix, flags)
	fmt.Fprintf(w, "  state          %s (node %s, run %d)\n", j.State, j.Node, j.Runs)
	fmt.Fprintf(w, "  progress       %s\n", progressLine(j))
	fmt.Fprintf(w, "  origin bytes   %s (amplification %.2f)\n", human(j.OriginBytes), j.Amplification)
	if !j.Finished.IsZero() {
		fmt.Fprintf(w, "  took           %s\n", j.Finished.Sub(j.Created).Round(time.Millisecond))
	}
	if j.Error != "" {
		fmt.Fprintf(w, "  error          %s\n", j.Error)
	}
	for _, f := range j.Failures {
		fmt.Fprintf(w, "  failed         %s (%d attempts): %s\n", f.Key, f.Attempts, f.Reason)
	}
	return nil
}

func cmdJobs(ctx context.Context, e env, args []string) error {
	var watch *bool
	c, rest, asJSON, err := clientFlags(e, "jobs", "[JOB]", args, func(fs *flag.FlagSet) string {
		watch = fs.Bool("watch", false, "")
		return "  --watch\n        follow JOB until it ends\n\nWithout JOB: every member's jobs. 'shoal cancel JOB' cancels one.\n"
	})
	if err != nil {
		return err
	}
	switch {
	case len(rest) > 1:
		return fmt.Errorf("%w: jobs takes at most one JOB", errUsage)
	case len(rest) == 1 && *watch:
		return follow(ctx, e, c, rest[0], asJSON, false)
	case len(rest) == 1:
		raw, err := c.Job(ctx, rest[0])
		if err != nil {
			return err
		}
		j, done, err := decodeOrPrint[jobs.Job](e, raw, asJSON)
		if done || err != nil {
			return err
		}
		return printJob(e.stdout, j)
	case *watch:
		return fmt.Errorf("%w: --watch needs a JOB", errUsage)
	}
	raw, err := c.Jobs(ctx)
	if err != nil {
		return err
	}
	js, done, err := decodeOrPrint[[]jobs.Job](e, raw, asJSON)
	if done || err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPREFIX\tSTATE\tOBJECTS\tBYTES\tRATE\tETA\tFAILED\tAMPL\tNODE")
	for _, j := range js {
		objs, bytes := fmt.Sprintf("%d/?", j.ObjectsDone), human(j.BytesDone)+"/?"
		if j.Listed {
			objs, bytes = fmt.Sprintf("%d/%d", j.ObjectsDone, j.Objects), human(j.BytesDone)+"/"+human(j.Bytes)
		}
		rate, eta := "-", "-"
		if j.Rate > 0 {
			rate, eta = human(int64(j.Rate))+"/s", (time.Duration(j.ETASeconds) * time.Second).String()
		}
		fmt.Fprintf(tw, "%s\ts3://%s/%s\t%s\t%s\t%s\t%s\t%s\t%d\t%.2f\t%s\n", j.ID, j.Spec.Bucket, j.Spec.Prefix, j.State,
			objs, bytes, rate, eta, j.ObjectsFailed, j.Amplification, shortID(j.Node))
	}
	return tw.Flush()
}

func cmdCancel(ctx context.Context, e env, args []string) error {
	c, rest, asJSON, err := clientFlags(e, "cancel", "JOB", args, nil)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("%w: cancel takes exactly one JOB", errUsage)
	}
	raw, err := c.CancelJob(ctx, rest[0])
	if err != nil {
		return err
	}
	j, done, err := decodeOrPrint[jobs.Job](e, raw, asJSON)
	if done || err != nil {
		return err
	}
	return printJob(e.stdout, j)
}

func cmdWhere(ctx context.Context, e env, args []string) error {
	c, rest, asJSON, err := clientFlags(e, "where", "s3://bucket/key", args, nil)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("%w: where takes exactly one s3://bucket/key", errUsage)
	}
	bucket, key, err := admin.ParseS3URL(rest[0])
	if err != nil || key == "" {
		return fmt.Errorf("%w: want s3://bucket/key", errUsage)
	}
	raw, err := c.Where(ctx, bucket, key)
	if err != nil {
		return err
	}
	w, done, err := decodeOrPrint[node.WhereResult](e, raw, asJSON)
	if done || err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "s3://%s/%s  %s  %d chunks  ETag %s\n", w.Bucket, w.Key, human(w.Size), len(w.Chunks), w.ETag)
	fmt.Fprintf(e.stdout, "cached here %.0f%%, in the cluster %.0f%%, fewest copies %d (asked %d members live", 100*w.CachedHere, 100*w.CachedCluster, w.MinCopies, len(w.Asked))
	if len(w.Unreached) > 0 {
		fmt.Fprintf(e.stdout, ", %d unreachable: %s", len(w.Unreached), strings.Join(w.Unreached, ", "))
	}
	fmt.Fprintln(e.stdout, ")")
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHUNK\tSIZE\tCOPIES\tHOLDERS\tHOME")
	for _, ch := range w.Chunks {
		holders := make([]string, len(ch.Holders))
		for i, h := range ch.Holders {
			holders[i] = shortID(h)
		}
		home := "-"
		if len(ch.Homes) > 0 {
			home = shortID(ch.Homes[0])
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\n", ch.Index, human(ch.Size), len(ch.Holders), strings.Join(holders, ","), home)
	}
	return tw.Flush()
}

func cmdLs(ctx context.Context, e env, args []string) error {
	var cached *bool
	c, rest, asJSON, err := clientFlags(e, "ls", "--cached s3://bucket/prefix", args, func(fs *flag.FlagSet) string {
		cached = fs.Bool("cached", false, "")
		return "  --cached\n        list the objects this node knows with the share cached here and in the cluster\n"
	})
	if err != nil {
		return err
	}
	if !*cached {
		return fmt.Errorf("%w: ls lists what is cached: give --cached (use an S3 client for the origin's listing)", errUsage)
	}
	if len(rest) != 1 {
		return fmt.Errorf("%w: ls takes exactly one s3://bucket/prefix", errUsage)
	}
	bucket, prefix, err := admin.ParseS3URL(rest[0])
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	raw, err := c.Cached(ctx, bucket, prefix)
	if err != nil {
		return err
	}
	objs, done, err := decodeOrPrint[[]node.CachedObject](e, raw, asJSON)
	if done || err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tSIZE\tHERE\tCLUSTER")
	for _, o := range objs {
		fmt.Fprintf(tw, "%s\t%s\t%.0f%%\t%.0f%%\n", o.Key, human(o.Size), 100*o.Here, 100*o.Cluster)
	}
	return tw.Flush()
}

func cmdPeers(ctx context.Context, e env, args []string) error {
	c, rest, asJSON, err := clientFlags(e, "peers", "", args, nil)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("%w: peers takes no arguments", errUsage)
	}
	raw, err := c.Peers(ctx)
	if err != nil {
		return err
	}
	ps, done, err := decodeOrPrint[[]node.PeerView](e, raw, asJSON)
	if done || err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tADDRESS\tRTT\tTHROUGHPUT\tIN FLIGHT\tBYTES IN\tRATE IN\tBYTES OUT\tHELD\tPENALIZED")
	rate := func(bps float64) string {
		if bps <= 0 {
			return "-"
		}
		return human(int64(bps)) + "/s"
	}
	for _, p := range ps {
		held := "-"
		if p.BlocksHeld >= 0 {
			held = fmt.Sprintf("%d blocks, %s", p.BlocksHeld, human(p.BytesHeld))
		}
		pen := "no"
		if p.Penalized {
			pen = "until " + p.PenaltyEnd.Format(time.TimeOnly)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Addr, p.RTT.Round(10*time.Microsecond), rate(p.Throughput),
			p.InFlight, human(p.BytesIn), rate(p.ReceiveRate), human(p.BytesOut), held, pen)
	}
	return tw.Flush()
}

// statusView is the part of /v1/status the text output shows.
type statusView struct {
	node.Status
	P2P *struct {
		PeerID  string
		Members []string
	}
}

func printStatus(w io.Writer, raw json.RawMessage) error {
	var st statusView
	if err := json.Unmarshal(raw, &st); err != nil {
		return err
	}
	if st.P2P != nil {
		fmt.Fprintf(w, "node        %s, %d members\n", st.P2P.PeerID, len(st.P2P.Members))
	} else {
		fmt.Fprintln(w, "node        alone (no cluster)")
	}
	fmt.Fprintf(w, "store       %s in %d blocks (memory %s, disk %s of %s), %d pinned blocks (%s)\n", human(st.Store.Bytes), st.Store.Blocks,
		human(st.Memory.Bytes), human(st.Disk.Bytes), human(st.Disk.BudgetBytes), st.Store.Pinned, human(st.Store.PinnedBytes))
	fmt.Fprintf(w, "catalog     %d objects, %d chunks, %d manifests, %d pinned prefixes\n", st.Objects, st.Chunks, st.Manifests, st.Pins)
	fmt.Fprintf(w, "chunks      %d local hits, %d from peers, %d from homes, %d from the origin (%s)\n",
		st.ChunkHits, st.ChunkPeer, st.ChunkHome, st.ChunkOrigin, human(st.OriginBytes))
	fmt.Fprintf(w, "replicas    deficit %d chunks (%s), %d repaired (%s)\n", st.Replicas.Deficit, human(st.Replicas.DeficitBytes),
		st.Replicas.Repaired, human(st.Replicas.RepairedBytes))
	if len(st.Jobs) == 0 {
		fmt.Fprintln(w, "jobs        none running here")
	}
	for _, j := range st.Jobs {
		fmt.Fprintf(w, "job         %s s3://%s/%s %s: %s\n", j.ID, j.Spec.Bucket, j.Spec.Prefix, j.State, progressLine(j))
	}
	return nil
}

func printPinResult(w io.Writer, op, target string, raw json.RawMessage) error {
	var r node.PinResult
	var errs struct {
		Errors []struct{ Key string }
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		_ = json.Unmarshal(raw, &errs)
	}
	fmt.Fprintf(w, "%s %s: %d objects, %s, %d chunks", op, target, r.Objects, human(r.Bytes), r.Chunks)
	if n := len(r.Errors) + len(errs.Errors); n > 0 {
		fmt.Fprintf(w, ", %d failed (see --json)", n)
	}
	fmt.Fprintln(w)
	return nil
}

// shortID shortens a peer ID for tables (the last 8 characters).
func shortID(s string) string {
	if len(s) <= 12 {
		return s
	}
	return ".." + s[len(s)-8:]
}

// human prints a byte count with a binary unit.
func human(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit && exp < 5; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}
