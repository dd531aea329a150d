package orchestrator

import (
	"context"
	"errors"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// Workers' labels and the queues that select them
//
// A job's runs_on ({os: linux, gpu: "true"}) names labels a worker must
// have, each with its value. Jobs without runs_on are in the queue "jobs",
// as always; jobs with one are in a queue of their own selector,
// "jobs@gpu=true,os=linux" (queueOf). The database's queue hands out the
// items of one queue, so a worker leases from "jobs" and from each queue
// whose selector its labels satisfy (leaseAny). Which selector queues
// exist is kept in the database as WorkerQueue documents, created when a
// queue's first job is queued: every server learns of a queue another
// server created, and a server that restarts still knows it.

// Labels every worker has, with the values of the machine it runs on.
const (
	LabelOS       = "os"
	LabelArch     = "arch"
	LabelPlatform = "platform"
)

// DefaultLabels are the labels of a worker on this machine: os, arch and
// platform (linux, amd64, linux/amd64).
func DefaultLabels() map[string]string {
	return map[string]string{LabelOS: runtime.GOOS, LabelArch: runtime.GOARCH, LabelPlatform: runtime.GOOS + "/" + runtime.GOARCH}
}

// queueOf is the queue of jobs whose runs_on is sel.
func queueOf(sel map[string]string) string {
	if len(sel) == 0 {
		return jobQueue
	}
	parts := make([]string, 0, len(sel))
	for _, k := range slices.Sorted(maps.Keys(sel)) {
		parts = append(parts, k+"="+sel[k])
	}
	return jobQueue + "@" + strings.Join(parts, ",")
}

// Selects reports whether a worker with labels may run a job whose
// runs_on is sel.
func Selects(sel, labels map[string]string) bool {
	for k, v := range sel {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}

// queueSet is what a server knows of the selector queues: read from the
// database at most every queueRefresh, and added to as it creates them.
type queueSet struct {
	mu      sync.Mutex
	known   map[string]map[string]string // queue -> selector
	created map[string]bool              // documents this process made or saw
	read    time.Time
}

const queueRefresh = 2 * time.Second

// ensureQueue records the queue of a selector, once per process.
func (o *Orchestrator) ensureQueue(ctx context.Context, sel map[string]string) error {
	if len(sel) == 0 {
		return nil
	}
	q := queueOf(sel)
	o.queues.mu.Lock()
	done := o.queues.created[q]
	o.queues.mu.Unlock()
	if done {
		return nil
	}
	doc := &resource.WorkerQueue{Meta: resource.Meta{Kind: resource.KindWorkerQueue, Name: q}, Selector: sel}
	if err := o.store.create(ctx, doc); err != nil && !errors.Is(err, sdk.ErrAlreadyExists) {
		return err
	}
	o.queues.mu.Lock()
	if o.queues.created == nil {
		o.queues.created = map[string]bool{}
		o.queues.known = map[string]map[string]string{}
	}
	o.queues.created[q] = true
	o.queues.known[q] = sel
	o.queues.mu.Unlock()
	return nil
}

// queuesFor returns the queues a worker with labels leases from: "jobs"
// first, then the selector queues its labels satisfy.
func (o *Orchestrator) queuesFor(ctx context.Context, labels map[string]string) []string {
	o.queues.mu.Lock()
	stale := time.Since(o.queues.read) > queueRefresh
	o.queues.mu.Unlock()
	if stale {
		var docs []resource.WorkerQueue
		token := ""
		for {
			page, next, err := list[resource.WorkerQueue](ctx, o.store, resource.KindWorkerQueue, "", nil, 500, token)
			if err != nil {
				o.log.Warn("list the worker queues", "error", err)
				break
			}
			docs = append(docs, page...)
			if token = next; token == "" {
				o.queues.mu.Lock()
				if o.queues.known == nil {
					o.queues.known, o.queues.created = map[string]map[string]string{}, map[string]bool{}
				}
				for _, d := range docs {
					o.queues.known[d.Name] = d.Selector
					o.queues.created[d.Name] = true
				}
				o.queues.read = time.Now()
				o.queues.mu.Unlock()
				break
			}
		}
	}
	out := []string{jobQueue}
	o.queues.mu.Lock()
	defer o.queues.mu.Unlock()
	for _, q := range slices.Sorted(maps.Keys(o.queues.known)) {
		if Selects(o.queues.known[q], labels) {
			out = append(out, q)
		}
	}
	return out
}
