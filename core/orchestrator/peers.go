package orchestrator

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

// Several servers on one database (docs/design/multi-server.md).
//
// Each server keeps the state of the runs it works on (runstate.go) and
// writes every change through, guarded by the document's revision, so two
// servers can never both apply a transition: the second write finds the
// first one's revision, reads the document again and sees the job already
// decided. What a server cannot see by itself is a change made by another
// server to a run it keeps: a job that ended there may make a job ready
// here, the run may have been cancelled or timed out there while its job
// runs here, a pipeline may have been deleted there. It learns them from
// the database's watch of runs, jobs and pipeline versions:
//
//   - a job's document with a newer revision than the state's replaces the
//     state's copy; when that makes jobs ready (or ends the run) this server
//     decides them, as the server that wrote the change does too: both
//     write the same decisions and the revision lets one of them through;
//   - a run's summary with a newer revision replaces the state's; a run
//     that ended drops the state and stops the jobs of the run running
//     here (a cancel received by any server stops the job on this one);
//   - the runs not ended (for --max-queued-runs) are counted from the
//     runs' changes, so the limit holds for all the servers together;
//   - a deleted pipeline version drops its cached plan (a pipeline applied
//     again under the same name starts at version 1 again).
//
// When a watch restarts (the database restarted, or its history no longer
// reaches back) what was missed is not known: every state is dropped and
// its run scheduled again from the documents, the plans are forgotten and
// the active runs counted again.

// peerKinds are the kinds whose changes by other servers matter here.
var peerKinds = []string{resource.KindRun, resource.KindJob, resource.KindPipelineVersion}

// peerRevisions reads the current revision of each watched kind, before
// recover reads the documents, so that no change made between the two is
// missed.
func (o *Orchestrator) peerRevisions(ctx context.Context) (map[string]int64, error) {
	db, err := o.database(ctx)
	if err != nil {
		return nil, err
	}
	revs := map[string]int64{}
	for _, k := range peerKinds {
		resp, err := db.List(ctx, &database.ListRequest{Kind: k, PageSize: 1})
		if err != nil {
			return nil, err
		}
		revs[k] = resp.Revision
	}
	return revs, nil
}

// watchPeers follows the changes of each kind from its revision until ctx
// ends, resynchronising after a watch had to restart.
func (o *Orchestrator) watchPeers(ctx context.Context, revs map[string]int64) {
	for _, k := range peerKinds {
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			o.peerLoop(ctx, k, revs[k])
		}()
	}
}

func (o *Orchestrator) peerLoop(ctx context.Context, kind string, rev int64) {
	for first := true; ctx.Err() == nil; first = false {
		if !first {
			// Changes may have been missed: start from now, and read
			// again what depends on them.
			db, err := o.database(ctx)
			if err == nil {
				var resp *database.ListResponse
				if resp, err = db.List(ctx, &database.ListRequest{Kind: kind, PageSize: 1}); err == nil {
					rev = resp.Revision
					err = o.resyncPeers(ctx, kind)
				}
			}
			if err != nil {
				if ctx.Err() == nil {
					o.log.Warn("read again what other servers changed", "kind", kind, "error", err)
					sleep(ctx, time.Second)
				}
				continue
			}
		}
		db, err := o.database(ctx)
		if err == nil {
			err = db.Watch(ctx, &database.WatchRequest{Kind: kind, AfterRevision: rev}, func(ev database.Event) error {
				rev = ev.Resource.Revision
				o.peerChange(ctx, kind, ev)
				if kind == resource.KindJob {
					if f := o.jobEvents.Load(); f != nil {
						(*f)(ev)
					}
				}
				return nil
			})
		}
		if ctx.Err() != nil {
			return
		}
		if !errors.Is(err, sdk.ErrFailedPrecondition) {
			o.log.Warn("watch the changes of other servers", "kind", kind, "error", err)
			sleep(ctx, time.Second)
		}
	}
}

// resyncPeers reads again what depends on a kind whose changes may have
// been missed.
func (o *Orchestrator) resyncPeers(ctx context.Context, kind string) error {
	switch kind {
	case resource.KindPipelineVersion:
		o.mu.Lock()
		clear(o.plans)
		o.mu.Unlock()
	case resource.KindRun, resource.KindJob:
		o.mu.Lock()
		var keys []string
		for k := range o.runs {
			keys = append(keys, k)
		}
		o.mu.Unlock()
		for _, k := range keys {
			ns, name, _ := strings.Cut(k, "/")
			o.forgetRun(ns, name)
			if _, err := o.schedule(ctx, ns, name); err != nil && !errors.Is(err, sdk.ErrNotFound) {
				o.log.Warn("schedule a run again", "run", name, "error", err)
			}
		}
		if kind == resource.KindRun {
			active := map[string]struct{}{}
			if err := o.eachActiveRun(ctx, func(r *resource.Run) {
				if !r.Status.Terminal() {
					active[r.Namespace+"/"+r.Name] = struct{}{}
				}
			}); err != nil {
				return err
			}
			o.mu.Lock()
			o.active = active
			o.mu.Unlock()
		}
	}
	return nil
}

// peerChange takes in a change, made by this server or another.
func (o *Orchestrator) peerChange(ctx context.Context, kind string, ev database.Event) {
	switch kind {
	case resource.KindPipelineVersion:
		if ev.Type == database.EventDeleted {
			o.mu.Lock()
			delete(o.plans, ev.Resource.Key.Namespace+"/"+ev.Resource.Key.Name)
			o.mu.Unlock()
		}
	case resource.KindRun:
		o.peerRunChange(ctx, ev)
	case resource.KindJob:
		o.peerJobChange(ctx, ev)
	}
}

func (o *Orchestrator) peerRunChange(ctx context.Context, ev database.Event) {
	ns, name := ev.Resource.Key.Namespace, ev.Resource.Key.Name
	if ev.Type == database.EventDeleted {
		o.forgetRun(ns, name)
		o.trackActive(&resource.Run{Meta: resource.Meta{Namespace: ns, Name: name}}, false)
		return
	}
	run := &resource.Run{}
	if err := decode(&ev.Resource, run); err != nil {
		o.log.Warn("decode a changed run", "run", name, "error", err)
		return
	}
	ended := run.Status.Terminal()
	o.trackActive(run, !ended && run.Labels["active"] == "true")
	if ended {
		// Ended here or on another server: the run's jobs running here
		// stop (they are cancelled by it).
		o.stopRunJobs(ns, name)
	}
	o.mu.Lock()
	st := o.runs[ns+"/"+name]
	o.mu.Unlock()
	if st == nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.gone || st.run == nil || ev.Resource.Revision <= st.runRev {
		return
	}
	if ended {
		st.gone = true
		o.dropState(ns+"/"+name, st)
		return
	}
	run.Jobs = st.run.Jobs
	*st.run = *run
	st.runRev = ev.Resource.Revision
}

// ownJobChange reports, from the change's key and labels alone, that a
// job's change needs no decoding here: its run is not kept here, or the
// state already holds that revision (most often: this server wrote it).
// Decoding every job document twice (here and for events) was a large
// part of a job's cost in the server.
func (o *Orchestrator) ownJobChange(ev database.Event) bool {
	ns, runName := ev.Resource.Key.Namespace, ev.Resource.Labels["run"]
	job, ok := strings.CutPrefix(ev.Resource.Key.Name, runName+".")
	if runName == "" || !ok {
		return false
	}
	o.mu.Lock()
	st := o.runs[ns+"/"+runName]
	o.mu.Unlock()
	if st == nil {
		return true // not kept here: read from the documents at its next use
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	i, ok := st.index(job)
	return ok && ev.Resource.Revision <= st.rev[i]
}

// keptJob returns the status of the job a change is of as this process's
// state of its run holds it, with its run's name and its revision, when
// the state is at that very change (it wrote it, or read it since). A
// state already past it does not do: the events between the two would
// be lost. The state replaces a job's status rather than change it, so
// the status returned is not changed afterwards.
func (o *Orchestrator) keptJob(ev database.Event) (js resource.JobStatus, run string, rev int64, ok bool) {
	ns, runName := ev.Resource.Key.Namespace, ev.Resource.Labels["run"]
	job, found := strings.CutPrefix(ev.Resource.Key.Name, runName+".")
	if runName == "" || !found {
		return js, "", 0, false
	}
	o.mu.Lock()
	st := o.runs[ns+"/"+runName]
	o.mu.Unlock()
	if st == nil {
		return js, "", 0, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	i, found := st.index(job)
	if !found || ev.Resource.Revision != st.rev[i] {
		return js, "", 0, false
	}
	return st.run.Jobs[i], runName, st.rev[i], true
}

// stopRunJobs stops the jobs of a run that run in this process.
func (o *Orchestrator) stopRunJobs(ns, name string) {
	prefix := ns + "/" + name + "/"
	o.mu.Lock()
	defer o.mu.Unlock()
	for k, cancel := range o.running {
		if strings.HasPrefix(k, prefix) {
			cancel(errRunCancelled)
		}
	}
}

func (o *Orchestrator) peerJobChange(ctx context.Context, ev database.Event) {
	if ev.Type == database.EventDeleted {
		return
	}
	if o.ownJobChange(ev) {
		return
	}
	doc := &resource.Job{}
	if err := decode(&ev.Resource, doc); err != nil {
		o.log.Warn("decode a changed job", "job", ev.Resource.Key.Name, "error", err)
		return
	}
	ns := ev.Resource.Key.Namespace
	key := ns + "/" + doc.Run
	o.mu.Lock()
	st := o.runs[key]
	o.mu.Unlock()
	if st == nil {
		return // not kept here: read from the documents at its next use
	}
	var queued []jobItem
	var run *resource.Run
	st.mu.Lock()
	i, ok := st.index(doc.JobStatus.Name)
	if st.gone || st.run == nil || st.run.Status.Terminal() || !ok || ev.Resource.Revision <= st.rev[i] {
		st.mu.Unlock()
		return
	}
	st.set(i, doc.JobStatus, ev.Resource.Revision)
	if len(st.ready) > 0 || st.ended == len(st.run.Jobs) {
		// Another server's change made jobs ready here: decide them.
		more, err := o.advanceRun(ctx, st)
		queued = more
		if err != nil && !isDecision(err) {
			o.log.Warn("advance a run changed by another server", "run", doc.Run, "error", err)
			st.gone = true
			o.dropState(key, st)
		}
		if st.run.Status.Terminal() {
			st.gone = true
			o.dropState(key, st)
			run = st.summaryCopy()
		}
	}
	st.mu.Unlock()
	if err := o.enqueue(ctx, queued...); err != nil {
		o.log.Error("enqueue jobs", "run", doc.Run, "error", err)
	}
	if run != nil {
		o.runEnded(ctx, run)
	}
}
