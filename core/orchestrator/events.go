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
// It derives them from the database's watch of runs rather than from the
// code that changes them: every status change is a write of the run
// resource, so watching the writes sees each change exactly once, in
// order, including changes made by another server on the same database.
func (o *Orchestrator) WatchEvents(ctx context.Context) {
	w := &watcher{o: o, bus: o.opts.Events, m: o.opts.Metrics, runs: map[string]*watched{}}
	o.wg.Add(2)
	go func() {
		defer o.wg.Done()
		w.runLoop(ctx)
	}()
	go func() {
		defer o.wg.Done()
		w.pluginLoop(ctx)
	}()
}

type watcher struct {
	o    *Orchestrator
	bus  *events.Bus
	m    *metrics.Metrics
	runs map[string]*watched // by namespace/name; runs not ended
}

type watched struct {
	revision int64
	run      *resource.Run
}

func (w *watcher) publish(e events.Event) {
	if w.bus != nil {
		w.bus.Publish(e)
	}
}

func (w *watcher) runLoop(ctx context.Context) {
	for ctx.Err() == nil {
		rev, err := w.seed(ctx)
		if err == nil {
			var db database.Database
			if db, err = w.o.database(ctx); err == nil {
				err = db.Watch(ctx, &database.WatchRequest{Kind: resource.KindRun, AfterRevision: rev}, w.change)
			}
		}
		if ctx.Err() != nil {
			return
		}
		if !errors.Is(err, sdk.ErrFailedPrecondition) {
			w.o.log.Warn("watch runs for events", "error", err)
			sleep(ctx, time.Second)
		}
	}
}

// seed reads the runs not ended, and returns the revision to watch after.
func (w *watcher) seed(ctx context.Context) (int64, error) {
	db, err := w.o.database(ctx)
	if err != nil {
		return 0, err
	}
	var rev int64
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
			if decode(&resp.Items[i], r) == nil {
				w.runs[r.Namespace+"/"+r.Name] = &watched{revision: resp.Items[i].Revision, run: r}
			}
		}
		if resp.NextPageToken == "" {
			break
		}
		token = resp.NextPageToken
	}
	w.gauges()
	return rev, nil
}

func (w *watcher) change(ev database.Event) error {
	key := ev.Resource.Key.Namespace + "/" + ev.Resource.Key.Name
	prev := w.runs[key]
	if prev != nil && ev.Resource.Revision <= prev.revision {
		return nil // seen already
	}
	if ev.Type == database.EventDeleted {
		delete(w.runs, key)
		w.gauges()
		return nil
	}
	cur := &resource.Run{}
	if err := decode(&ev.Resource, cur); err != nil {
		w.o.log.Warn("decode a run for events", "run", key, "error", err)
		return nil
	}
	var old *resource.Run
	if prev != nil {
		old = prev.run
	} else if ev.Type != database.EventCreated {
		// A run we did not see start (ended before the seed, or older
		// than the watch): only its changes from now on are news.
		if cur.Status.Terminal() {
			return nil
		}
	}
	w.diff(old, cur)
	if cur.Status.Terminal() {
		delete(w.runs, key)
	} else {
		w.runs[key] = &watched{revision: ev.Resource.Revision, run: cur}
	}
	w.gauges()
	return nil
}

// diff publishes what changed between two states of a run (old is nil for
// a new run).
func (w *watcher) diff(old, cur *resource.Run) {
	base := events.Event{Namespace: cur.Namespace, Pipeline: cur.Pipeline, Run: cur.Name}
	if old == nil {
		e := base
		e.Type, e.Status, e.Trigger, e.Reason = events.TypeRun, string(cur.Status), cur.Trigger.Name, "started by "+cur.Trigger.Type+" trigger"
		w.publish(e)
		if w.m != nil {
			w.m.RunsStarted.WithLabelValues(cur.Trigger.Type).Inc()
		}
		old = &resource.Run{}
	}
	for i := range cur.Jobs {
		j := &cur.Jobs[i]
		var oj *resource.JobStatus
		if oj = old.Job(j.Name); oj == nil {
			oj = &resource.JobStatus{}
		}
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
			continue
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
	if old.Status != cur.Status && old.Status != "" {
		e := base
		e.Type, e.Status, e.Reason = events.TypeRun, string(cur.Status), cur.Reason
		w.publish(e)
		if w.m != nil && cur.Status.Terminal() {
			w.m.RunsFinished.WithLabelValues(string(cur.Status)).Inc()
		}
	}
}

// gauges sets the gauges from the runs not ended.
func (w *watcher) gauges() {
	if w.m == nil {
		return
	}
	counts := map[resource.Status]int{}
	queued := 0
	for _, r := range w.runs {
		counts[r.run.Status]++
		for _, j := range r.run.Jobs {
			if j.Status == resource.StatusQueued {
				queued++
			}
		}
	}
	for _, st := range []resource.Status{resource.StatusPending, resource.StatusQueued, resource.StatusRunning, resource.StatusWaiting} {
		w.m.RunsActive.WithLabelValues(string(st)).Set(float64(counts[st]))
	}
	w.m.JobsQueued.Set(float64(queued))
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
