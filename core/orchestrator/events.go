package orchestrator

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/palvella/palvella/core/events"
	"github.com/palvella/palvella/core/metrics"
	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

// WatchEvents publishes run, job, action, approval and plugin events on
// Options.Events and keeps Options.Metrics up to date, until ctx ends.
//
// It derives them from the database's watch of runs and jobs rather than
// from the code that changes them: every status change is a write of a
// run's or a job's document, so watching the writes sees each change
// exactly once, in order, including changes made by another server on
// the same database. The two kinds are watched apart and merged: a run's
// change waits until the jobs' watch has passed its revision or has
// nothing more to say, so that a run is seen to end after its jobs.
//
// The jobs' changes come from the peer watch (peers.go), which reads every
// change of a job anyway: a second watch of jobs doubled the database's
// work for each job's write. Start must have run.
func (o *Orchestrator) WatchEvents(ctx context.Context) {
	w := &watcher{o: o, bus: o.opts.Events, m: o.opts.Metrics, runs: map[string]*watched{}}
	in := make(chan watchItem, 1024)
	jobs := func(ev database.Event) {
		select {
		case in <- watchItem{kind: resource.KindJob, ev: ev}:
		case <-ctx.Done():
		}
	}
	o.jobEvents.Store(&jobs)
	o.wg.Add(3)
	go func() {
		defer o.wg.Done()
		w.watchLoop(ctx, resource.KindRun, in)
	}()
	go func() {
		defer o.wg.Done()
		w.merge(ctx, in)
	}()
	go func() {
		defer o.wg.Done()
		w.pluginLoop(ctx)
	}()
}

type watcher struct {
	o      *Orchestrator
	bus    *events.Bus
	m      *metrics.Metrics
	runs   map[string]*watched // by namespace/name; runs not ended
	queued int                 // jobs queued in the runs watched
}

type watched struct {
	revision int64
	run      *resource.Run
	jobs     map[string]*watchedJob
}

type watchedJob struct {
	revision int64
	job      resource.JobStatus
}

// watchItem is a change, or the runs read when a watch (re)starts.
type watchItem struct {
	kind   string
	ev     database.Event
	isSeed bool
	seed   []*watched
}

func (w *watcher) publish(e events.Event) {
	if w.bus != nil {
		w.bus.Publish(e)
	}
}

// watchLoop watches runs, from a list of those not ended, again after any
// failure.
func (w *watcher) watchLoop(ctx context.Context, kind string, in chan<- watchItem) {
	for ctx.Err() == nil {
		rev, err := w.seed(ctx, kind, in)
		if err == nil {
			var db database.Database
			if db, err = w.o.database(ctx); err == nil {
				err = db.Watch(ctx, &database.WatchRequest{Kind: kind, AfterRevision: rev}, func(ev database.Event) error {
					select {
					case in <- watchItem{kind: kind, ev: ev}:
						return nil
					case <-ctx.Done():
						return ctx.Err()
					}
				})
			}
		}
		if ctx.Err() != nil {
			return
		}
		if !errors.Is(err, sdk.ErrFailedPrecondition) {
			w.o.log.Warn("watch for events", "kind", kind, "error", err)
			sleep(ctx, time.Second)
		}
	}
}

// seed sends the runs not ended, with their jobs, and returns the
// revision to watch runs after.
func (w *watcher) seed(ctx context.Context, kind string, in chan<- watchItem) (int64, error) {
	db, err := w.o.database(ctx)
	if err != nil {
		return 0, err
	}
	var rev int64
	var seed []*watched
	token := ""
	for {
		resp, err := db.List(ctx, &database.ListRequest{Kind: resource.KindRun, LabelSelector: map[string]string{"active": "true"}, PageSize: 500, PageToken: token})
		if err != nil {
			return 0, err
		}
		if rev == 0 {
			rev = resp.Revision
		}
		for i := range resp.Items {
			r := &resource.Run{}
			if decode(&resp.Items[i], r) != nil {
				continue
			}
			wr := &watched{revision: resp.Items[i].Revision, run: r, jobs: map[string]*watchedJob{}}
			if docs, err := w.o.jobDocs(ctx, r.Namespace, r.Name); err == nil {
				for name, d := range docs {
					wr.jobs[name] = &watchedJob{revision: d.Revision, job: d.JobStatus}
				}
			}
			seed = append(seed, wr)
		}
		if resp.NextPageToken == "" {
			break
		}
		token = resp.NextPageToken
	}
	select {
	case in <- watchItem{kind: resource.KindRun, isSeed: true, seed: seed}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return rev, nil
}

// mergeWait is how long a run's change waits for the jobs' watch to be
// quiet before it is published.
const mergeWait = 30 * time.Millisecond

// merge handles the changes of both watches in one goroutine, holding a
// run's change until the jobs' watch has passed its revision or been
// quiet for mergeWait.
func (w *watcher) merge(ctx context.Context, in <-chan watchItem) {
	var held []watchItem
	var heldSince, lastJob time.Time
	t := time.NewTicker(mergeWait / 2)
	defer t.Stop()
	flush := func(before int64) {
		k := 0
		for _, it := range held {
			if before == 0 || it.ev.Resource.Revision < before {
				w.runChange(it.ev)
			} else {
				held[k] = it
				k++
			}
		}
		held = held[:k]
	}
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-in:
			switch {
			case it.isSeed:
				flush(0)
				w.runs = map[string]*watched{}
				w.queued = 0
				for _, wr := range it.seed {
					w.runs[wr.run.Namespace+"/"+wr.run.Name] = wr
					for _, j := range wr.jobs {
						if j.job.Status == resource.StatusQueued {
							w.queued++
						}
					}
				}
				w.gauges()
			case it.kind == resource.KindJob:
				flush(it.ev.Resource.Revision)
				w.jobChange(it.ev)
				lastJob = time.Now()
			default:
				if len(held) == 0 {
					heldSince = time.Now()
				}
				held = append(held, it)
			}
		case <-t.C:
			if len(held) > 0 && time.Since(heldSince) >= mergeWait && time.Since(lastJob) >= mergeWait {
				flush(0)
			}
		}
	}
}

func (w *watcher) runChange(ev database.Event) {
	key := ev.Resource.Key.Namespace + "/" + ev.Resource.Key.Name
	prev := w.runs[key]
	if prev != nil && ev.Resource.Revision <= prev.revision {
		return // seen already
	}
	if ev.Type == database.EventDeleted {
		w.forget(key)
		return
	}
	cur := &resource.Run{}
	if err := decode(&ev.Resource, cur); err != nil {
		w.o.log.Warn("decode a run for events", "run", key, "error", err)
		return
	}
	base := events.Event{Namespace: cur.Namespace, Pipeline: cur.Pipeline, Run: cur.Name}
	if prev == nil {
		if ev.Type != database.EventCreated && cur.Status.Terminal() {
			// A run we did not see start (ended before the seed, or
			// older than the watch): only its changes from now on are news.
			return
		}
		prev = &watched{run: &resource.Run{}, jobs: map[string]*watchedJob{}}
		if ev.Type == database.EventCreated {
			e := base
			e.Type, e.Status, e.Trigger, e.Reason = events.TypeRun, string(cur.Status), cur.Trigger.Name, "started by "+cur.Trigger.Type+" trigger"
			w.publish(e)
			if w.m != nil {
				w.m.RunsStarted.WithLabelValues(cur.Trigger.Type).Inc()
			}
			prev.run.Status = cur.Status
		}
		w.runs[key] = prev
	}
	old := prev.run
	prev.revision, prev.run = ev.Resource.Revision, cur
	if cur.Status.Terminal() {
		// The jobs not ended are cancelled by the run's end.
		for name, j := range prev.jobs {
			if j.job.Status.Terminal() {
				continue
			}
			e := base
			e.Type, e.Job, e.Status, e.Reason = events.TypeJob, name, string(resource.StatusCancelled), cur.Reason
			w.publish(e)
		}
	}
	if old.Status != cur.Status && old.Status != "" {
		e := base
		e.Type, e.Status, e.Reason = events.TypeRun, string(cur.Status), cur.Reason
		w.publish(e)
		if w.m != nil && cur.Status.Terminal() {
			w.m.RunsFinished.WithLabelValues(string(cur.Status)).Inc()
		}
	}
	if cur.Status.Terminal() {
		w.forget(key)
	}
	w.gauges()
}

// forget stops following a run.
func (w *watcher) forget(key string) {
	if wr := w.runs[key]; wr != nil {
		for _, j := range wr.jobs {
			if j.job.Status == resource.StatusQueued {
				w.queued--
			}
		}
		delete(w.runs, key)
	}
	w.gauges()
}

func (w *watcher) jobChange(ev database.Event) {
	if ev.Type == database.EventDeleted {
		return
	}
	// A change this process made, or has read since, is in the run's
	// state when the state is at it: no need to decode it.
	js, run, rev, ok := w.o.keptJob(ev)
	if !ok {
		doc := &resource.Job{}
		if err := decode(&ev.Resource, doc); err != nil {
			w.o.log.Warn("decode a job for events", "job", ev.Resource.Key.Name, "error", err)
			return
		}
		js, run, rev = doc.JobStatus, doc.Run, ev.Resource.Revision
	}
	wr := w.runs[ev.Resource.Key.Namespace+"/"+run]
	if wr == nil {
		return // a run not followed: ended, or not seen start
	}
	prev := wr.jobs[js.Name]
	if prev != nil && rev <= prev.revision {
		return
	}
	old := &resource.JobStatus{}
	if prev != nil {
		old = &prev.job
	}
	base := events.Event{Namespace: wr.run.Namespace, Pipeline: wr.run.Pipeline, Run: wr.run.Name}
	w.diffJob(base, old, &js)
	if old.Status == resource.StatusQueued {
		w.queued--
	}
	if js.Status == resource.StatusQueued {
		w.queued++
	}
	wr.jobs[js.Name] = &watchedJob{revision: rev, job: js}
	if w.m != nil {
		w.m.JobsQueued.Set(float64(w.queued))
	}
}

// diffJob publishes what changed between two states of a job (old is the
// zero status for a job not seen before).
func (w *watcher) diffJob(base events.Event, oj, j *resource.JobStatus) {
	for k := range j.Actions {
		a := &j.Actions[k]
		oa := oj.Action(a.Name)
		if oa != nil && oa.Status == a.Status {
			continue
		}
		if oa == nil && a.Status == resource.StatusPending {
			continue
		}
		e := base
		e.Type, e.Job, e.Action, e.Status, e.Reason = events.TypeAction, j.Name, a.Name, string(a.Status), a.Message
		w.publish(e)
		if w.m != nil && a.Status.Terminal() && a.StartedAt != nil && a.FinishedAt != nil {
			w.m.ActionDuration.WithLabelValues(a.Type, string(a.Status)).Observe(a.FinishedAt.Sub(*a.StartedAt).Seconds())
		}
	}
	if oj.Status == j.Status || (oj.Status == "" && j.Status == resource.StatusPending) {
		return
	}
	e := base
	e.Type, e.Job, e.Status, e.Reason = events.TypeJob, j.Name, string(j.Status), j.Reason
	w.publish(e)
	switch {
	case j.Status == resource.StatusWaiting:
		a := e
		a.Type = events.TypeApproval
		w.publish(a)
	case oj.Status == resource.StatusWaiting:
		a := e
		a.Type, a.Status = events.TypeApproval, "approved"
		if j.Status == resource.StatusFailure || strings.HasPrefix(j.Reason, "rejected") {
			a.Status = "rejected"
		}
		w.publish(a)
	}
	if w.m != nil {
		if j.Status == resource.StatusRunning && j.QueuedAt != nil && j.StartedAt != nil {
			w.m.JobQueueWait.Observe(j.StartedAt.Sub(*j.QueuedAt).Seconds())
		}
		if j.Status.Terminal() && j.StartedAt != nil && j.FinishedAt != nil {
			w.m.JobDuration.WithLabelValues(string(j.Status)).Observe(j.FinishedAt.Sub(*j.StartedAt).Seconds())
		}
	}
}

// gauges sets the gauges from the runs not ended.
func (w *watcher) gauges() {
	if w.m == nil {
		return
	}
	counts := map[resource.Status]int{}
	for _, r := range w.runs {
		counts[r.run.Status]++
	}
	for _, st := range []resource.Status{resource.StatusPending, resource.StatusQueued, resource.StatusRunning, resource.StatusWaiting} {
		w.m.RunsActive.WithLabelValues(string(st)).Set(float64(counts[st]))
	}
	w.m.JobsQueued.Set(float64(w.queued))
}

// pluginLoop publishes a plugin event when a plugin's state or restart
// count changes.
func (w *watcher) pluginLoop(ctx context.Context) {
	type seen struct {
		state    string
		restarts int
	}
	last := map[string]seen{}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		for _, st := range w.o.opts.Plugins.List() {
			now := seen{string(st.State), st.Restarts}
			if prev, ok := last[st.Name]; !ok || prev != now {
				if ok {
					e := events.Event{Type: events.TypePlugin, Plugin: st.Name, Status: now.state, Reason: st.LastError}
					if now.restarts > prev.restarts {
						e.Reason = strings.TrimSpace("restarted " + e.Reason)
					}
					w.publish(e)
				}
				last[st.Name] = now
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
