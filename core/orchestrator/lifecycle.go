package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/palvella/palvella/core/resource"
)

// Start runs the embedded workers and the sweeper until ctx ends, after
// picking up the runs a previous process left unfinished. It returns once
// they are started; Wait waits for them to stop.
func (o *Orchestrator) Start(ctx context.Context) error {
	if _, err := o.typeIdx(ctx); err != nil {
		return fmt.Errorf("index plugin types: %w", err)
	}
	// The revisions come first: what other servers change from then on is
	// watched, and what they changed before is in what recover reads.
	revs, err := o.peerRevisions(ctx)
	if err != nil {
		return fmt.Errorf("read the database's revision: %w", err)
	}
	if err := o.recover(ctx); err != nil {
		return fmt.Errorf("recover unfinished runs: %w", err)
	}
	o.watchPeers(ctx, revs)
	for i := 0; i < o.opts.Workers; i++ {
		o.wg.Add(1)
		o.inflight.Add(1)
		go func() {
			defer o.wg.Done()
			defer o.inflight.Done()
			o.workerLoop(ctx) // returns once ctx ended and its job is done
		}()
	}
	// When ctx ends the workers stop leasing; the jobs they run go on for
	// the shutdown grace, then are stopped and handed back.
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		<-ctx.Done()
		o.drain()
	}()
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		o.sweep(ctx)
	}()
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		o.reapRemote(ctx)
	}()
	return nil
}

// Wait waits until the loops started by Start have stopped and every job
// they ran has finished or been handed back.
func (o *Orchestrator) Wait() { o.wg.Wait() }

// errShutdown is the cause of jobs stopped because the server stops.
var errShutdown = errors.New("the server stopped before the job ended")

// drain lets running jobs finish for the shutdown grace, then stops the
// rest; they are handed back to the queue as interrupted attempts.
func (o *Orchestrator) drain() {
	done := make(chan struct{})
	go func() {
		o.inflight.Wait() // every worker loop has returned
		close(done)
	}()
	if o.opts.ShutdownGrace > 0 {
		if n := o.runningCount(); n > 0 {
			o.log.Info("stopping: waiting for running jobs to finish", "jobs", n, "grace", o.opts.ShutdownGrace)
		}
		select {
		case <-done:
			o.stopJobs(errShutdown)
			return
		case <-time.After(o.opts.ShutdownGrace):
		}
	}
	if n := o.runningCount(); n > 0 {
		o.log.Warn("stopping: handing running jobs back to the queue; they run again after the restart", "jobs", n)
	}
	o.stopJobs(errShutdown)
	<-done
}

func (o *Orchestrator) runningCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.running)
}

// eachActiveRun calls fn for every run that has not ended, in every
// namespace.
func (o *Orchestrator) eachActiveRun(ctx context.Context, fn func(*resource.Run)) error {
	token := ""
	for {
		runs, next, err := list[resource.Run](ctx, o.store, resource.KindRun, "", map[string]string{"active": "true"}, 200, token)
		if err != nil {
			return err
		}
		for i := range runs {
			fn(&runs[i])
		}
		if next == "" {
			return nil
		}
		token = next
	}
}

// recover resumes what a stopped server left: queued jobs are queued again
// (idempotently), and every unfinished run is advanced. Jobs that were
// running come back from the queue when their worker's lease expires.
func (o *Orchestrator) recover(ctx context.Context) error {
	n := 0
	err := o.eachActiveRun(ctx, func(r *resource.Run) {
		n++
		o.trackActive(r, !r.Status.Terminal())
		if !r.Status.Terminal() {
			// The jobs recorded as queued are queued again; the rest of
			// the run is picked up by scheduling it below.
			var items []jobItem
			if err := o.withRun(ctx, r.Namespace, r.Name, func(st *runState) error {
				waiting := false
				for i, j := range st.run.Jobs {
					switch j.Status {
					case resource.StatusQueued:
						items = append(items, jobItem{Namespace: r.Namespace, Run: r.Name, Job: j.Name, Attempt: max(j.Attempt, 1), RunsOn: st.p.Jobs[i].RunsOn})
					case resource.StatusWaiting:
						waiting = true
					}
				}
				if waiting && st.run.Status == resource.StatusRunning {
					// The job's wait was written, the run's not.
					return st.updateRun(ctx, func(x *resource.Run) error {
						resource.SetStatus(&x.Status, &x.Transitions, resource.StatusWaiting, "a job is waiting for approval", o.now())
						return nil
					})
				}
				return nil
			}); err != nil {
				o.log.Error("read the jobs of an unfinished run", "run", r.Name, "error", err)
			}
			if err := o.enqueue(ctx, items...); err != nil {
				o.log.Error("requeue jobs", "run", r.Name, "error", err)
			}
		}
		if r.Status.Terminal() {
			// Ended, but its label was not cleared: clear it now.
			if _, err := mutate(ctx, o.store, resource.KindRun, r.Namespace, r.Name, func(x *resource.Run) error {
				delete(x.Labels, "active")
				return nil
			}); err != nil {
				o.log.Warn("clear active label", "run", r.Name, "error", err)
			}
			return
		}
		if _, err := o.schedule(ctx, r.Namespace, r.Name); err != nil {
			o.log.Error("resume run", "run", r.Name, "error", err)
		}
	})
	if n > 0 {
		o.log.Info("resumed unfinished runs", "count", n)
	}
	return err
}

// sweep ends runs that outlived their timeout.
func (o *Orchestrator) sweep(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := o.now()
		_ = o.eachActiveRun(ctx, func(r *resource.Run) {
			if r.StartedAt == nil || r.Status.Terminal() {
				return
			}
			p, err := o.planFor(ctx, r)
			if err != nil {
				return
			}
			timeout := p.Timeout
			if timeout == 0 {
				timeout = o.opts.DefaultRunTimeout
			}
			if now.Sub(*r.StartedAt) > timeout {
				if _, err := o.endRun(ctx, r.Namespace, r.Name, resource.StatusFailure, fmt.Sprintf("run timed out after %s", timeout)); err != nil {
					o.log.Warn("time out run", "run", r.Name, "error", err)
				}
			}
		}) // a failed listing is retried at the next tick
	}
}
