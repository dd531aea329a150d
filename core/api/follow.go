package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/palvella/palvella/core/events"
	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// Following is what the routes that follow runs serve: live logs, the
// event stream, run dumps, trigger records and metrics. A backend
// implements it next to [Backend]; a backend without it answers those
// routes with 501.
type Following interface {
	// FollowLogs calls fn with the log lines of a run's actions (of one
	// job when job is not empty, of one action when action is not empty
	// too) as they are written, each action's lines in order and each
	// line once, until every selected action has ended and its log is
	// complete, or ctx ends, or fn fails. It returns the final status of
	// what was followed (the run, the job or the action).
	FollowLogs(ctx context.Context, namespace, run, job, action string, fn func([]LogLine) error) (*StreamEnd, error)
	// Events subscribes to the event bus; with replay it first delivers
	// the kept events numbered after after.
	Events(filter events.Filter, replay bool, after uint64) (*events.Subscription, error)
	// DumpRun returns everything about a run, with credential values
	// masked.
	DumpRun(ctx context.Context, namespace, run string) (*RunDump, error)
	ListTriggerRecords(ctx context.Context, namespace, pipeline string, page PageRequest) (*Page[resource.TriggerRecord], error)
	GetTriggerRecord(ctx context.Context, namespace, name string) (*resource.TriggerRecord, error)
	// Metrics serves the Prometheus metrics.
	Metrics() http.Handler
}

func (s *server) following() (Following, error) {
	f, ok := s.b.(Following)
	if !ok {
		return nil, sdk.Errorf(sdk.ErrUnimplemented, "", "this server does not follow runs")
	}
	return f, nil
}

// sse writes a text/event-stream, sending its headers with the first
// event so that an error found before can still be a JSON error.
//
// A stream outlives the server's read timeout (which bounds reading a
// request): once it starts, the connection's read deadline is cleared, and
// each write has its own deadline instead, so that a follower that stops
// reading is dropped rather than held. mu serializes writes with the
// keep-alive.
type sse struct {
	w       http.ResponseWriter
	mu      sync.Mutex
	started bool
}

// streamWriteTimeout bounds each write of a stream.
const streamWriteTimeout = 30 * time.Second

// write writes raw text to the stream with its own deadline.
func (e *sse) write(s string) error {
	_ = http.NewResponseController(e.w).SetWriteDeadline(time.Now().Add(streamWriteTimeout)) // unsupported by test recorders
	_, err := io.WriteString(e.w, s)
	return err
}

// keepAlive writes a comment line every interval until the returned
// function is called, once the stream has started, so that proxies and
// followers see an idle stream is alive.
func (e *sse) keepAlive(interval time.Duration) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				e.mu.Lock()
				if e.started {
					if e.write(": keep-alive\n\n") == nil {
						_ = http.NewResponseController(e.w).Flush()
					}
				}
				e.mu.Unlock()
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// startLocked writes the stream's header once.
func (e *sse) startLocked() {
	if e.started {
		return
	}
	// The request is read: from now on only writes are bounded.
	_ = http.NewResponseController(e.w).SetReadDeadline(time.Time{})
	h := e.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	e.w.WriteHeader(http.StatusOK)
	e.started = true
}

// open starts the stream now, before its first event, so that a follower
// of something that has nothing to say yet (a job not started) knows the
// stream is open and keep-alives flow. Errors after it are error events.
func (e *sse) open() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.startLocked()
	if err := e.write(": open\n\n"); err != nil {
		return err
	}
	return http.NewResponseController(e.w).Flush()
}

func (e *sse) send(event string, data any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.startLocked()
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode a %s event: %w", event, err)
	}
	return e.write(fmt.Sprintf("event: %s\ndata: %s\n\n", event, b))
}

// id writes the id line of the next event.
func (e *sse) id(seq uint64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.write(fmt.Sprintf("id: %d\n", seq))
}

func (e *sse) flush() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return http.NewResponseController(e.w).Flush()
}

// stream ends a stream: an error before any event is an ordinary error
// answer; after, it is an "error" event.
func (e *sse) end(err error) error {
	if err == nil {
		return nil
	}
	if !e.started {
		return err
	}
	_, body := errorBody(err)
	_ = e.send("error", body) // the stream is ending either way
	_ = e.flush()
	return nil
}

func (s *server) streamLogs(c *call, job, action string) error {
	f, err := s.following()
	if err != nil {
		return err
	}
	ns, run := c.r.PathValue("ns"), c.r.PathValue("run")
	if job != "" && !validName(job) {
		return sdk.Errorf(sdk.ErrInvalidArgument, "job", "%q is not a valid job name", job)
	}
	// What is followed must exist: that is an ordinary error answer. Then
	// the stream opens at once, whether or not a line is there to send.
	r, err := s.b.GetRun(c.r.Context(), ns, run)
	if err != nil {
		return fmt.Errorf("follow the logs of %s/%s: %w", ns, run, err)
	}
	if job != "" && r.Job(job) == nil {
		return sdk.Errorf(sdk.ErrNotFound, "job", "run %s has no job %q", run, job)
	}
	if action != "" && r.Job(job).Action(action) == nil {
		return sdk.Errorf(sdk.ErrNotFound, "action", "job %s of run %s has no action %q", job, run, action)
	}
	out := &sse{w: c.w}
	if err := out.open(); err != nil {
		return nil // the follower went away
	}
	stopKeepAlive := out.keepAlive(eventKeepAlive)
	defer stopKeepAlive()
	end, err := f.FollowLogs(c.r.Context(), ns, run, job, action, func(lines []LogLine) error {
		for _, l := range lines {
			if err := out.send("line", l); err != nil {
				return err
			}
		}
		return out.flush()
	})
	if err != nil {
		return out.end(fmt.Errorf("follow the logs of %s/%s: %w", ns, run, err))
	}
	if err := out.send("end", *end); err != nil {
		return nil // the follower went away
	}
	_ = out.flush()
	return nil
}

func (s *server) streamRunLogs(c *call) error {
	return s.streamLogs(c, c.r.URL.Query().Get("job"), "")
}

func (s *server) streamActionLog(c *call) error {
	return s.streamLogs(c, c.r.PathValue("job"), c.r.PathValue("action"))
}

func (s *server) timeline(c *call) error {
	ns, name := c.r.PathValue("ns"), c.r.PathValue("run")
	run, err := s.b.GetRun(c.r.Context(), ns, name)
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, TimelineOf(run, time.Now().UTC()))
	return nil
}

func (s *server) dumpRun(c *call) error {
	f, err := s.following()
	if err != nil {
		return err
	}
	ns, name := c.r.PathValue("ns"), c.r.PathValue("run")
	d, err := f.DumpRun(c.r.Context(), ns, name)
	if err != nil {
		return fmt.Errorf("dump run %s/%s: %w", ns, name, err)
	}
	writeJSON(c.w, http.StatusOK, d)
	return nil
}

func (s *server) listTriggerRecords(c *call) error {
	f, err := s.following()
	if err != nil {
		return err
	}
	page, err := c.page()
	if err != nil {
		return err
	}
	pl := c.r.URL.Query().Get("pipeline")
	if pl != "" && !validName(pl) {
		return sdk.Errorf(sdk.ErrInvalidArgument, "pipeline", "%q is not a valid pipeline name", pl)
	}
	res, err := f.ListTriggerRecords(c.r.Context(), c.r.PathValue("ns"), pl, page)
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, res)
	return nil
}

func (s *server) getTriggerRecord(c *call) error {
	f, err := s.following()
	if err != nil {
		return err
	}
	ns, name := c.r.PathValue("ns"), c.r.PathValue("name")
	rec, err := f.GetTriggerRecord(c.r.Context(), ns, name)
	if err != nil {
		return err
	}
	if rec.Namespace != ns {
		return sdk.Errorf(sdk.ErrNotFound, "name", "namespace %s has no trigger record %q", ns, name)
	}
	writeJSON(c.w, http.StatusOK, rec)
	return nil
}

func (s *server) metrics(c *call) error {
	f, err := s.following()
	if err != nil {
		return err
	}
	f.Metrics().ServeHTTP(c.w, c.r)
	return nil
}

func (s *server) allEvents(c *call) error {
	return s.streamEvents(c, c.r.URL.Query().Get("namespace"))
}

func (s *server) namespaceEvents(c *call) error {
	return s.streamEvents(c, c.r.PathValue("ns"))
}

// eventKeepAlive is how often an idle event stream gets a comment line,
// so proxies and clients see it is alive.
const eventKeepAlive = 15 * time.Second

func (s *server) streamEvents(c *call, ns string) error {
	f, err := s.following()
	if err != nil {
		return err
	}
	q := c.r.URL.Query()
	filter := events.Filter{Namespace: ns, Pipeline: q.Get("pipeline")}
	if ns != "" && !validName(ns) {
		return sdk.Errorf(sdk.ErrInvalidArgument, "namespace", "%q is not a valid namespace", ns)
	}
	if filter.Pipeline != "" && !validName(filter.Pipeline) {
		return sdk.Errorf(sdk.ErrInvalidArgument, "pipeline", "%q is not a valid pipeline name", filter.Pipeline)
	}
	// An identity limited to namespaces follows its namespaces only: a
	// namespace it names must be one of them (and it is authorized as
	// that namespace's events), and with none it gets the events of its
	// namespaces, no plugin events.
	inScope := func(events.Event) bool { return true }
	if c.r.PathValue("ns") == "" && ns != "" {
		res := "event:" + ns + "/*"
		if filter.Pipeline != "" {
			res = "event:" + ns + "/" + filter.Pipeline + "/*"
		}
		if !InScope(c.id, ns) {
			return OutOfScope(c.id, res)
		}
		if err := s.authorize(c, res, "read"); err != nil {
			return err
		}
	} else if ns == "" && Limited(c.id) {
		id := c.id
		inScope = func(e events.Event) bool { return e.Namespace != "" && InScope(id, e.Namespace) }
	}
	if c.r.PathValue("ns") != "" {
		// A namespace's stream has no plugin events: they belong to none.
		filter.Types = []string{events.TypeRun, events.TypeJob, events.TypeAction, events.TypeApproval, events.TypeTrigger}
	}
	var after uint64
	replay := false
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			return sdk.Errorf(sdk.ErrInvalidArgument, "after", "must be an event number, not %q", v)
		}
		replay = true
	} else if v := c.r.Header.Get("Last-Event-ID"); v != "" {
		after, err = strconv.ParseUint(v, 10, 64)
		replay = err == nil // a bad one means from now
	}
	once := q.Get("once") == "true"
	if once && !replay {
		return sdk.Errorf(sdk.ErrInvalidArgument, "once", "once=true needs after (0 for every kept event)")
	}
	sub, err := f.Events(filter, replay, after)
	if err != nil {
		return err
	}
	defer sub.Close()
	out := &sse{w: c.w}
	if err := out.send("hello", map[string]any{"namespace": ns, "pipeline": filter.Pipeline}); err != nil {
		return nil
	}
	_ = out.flush()
	if once {
		// The kept events, then the end.
		for {
			select {
			case e, ok := <-sub.C:
				if !ok {
					return nil
				}
				if !inScope(e) {
					continue
				}
				if err := out.id(e.Seq); err != nil {
					return nil
				}
				if err := out.send(e.Type, e); err != nil {
					return nil
				}
				continue
			default:
			}
			_ = out.send("end", struct{}{})
			_ = out.flush()
			return nil
		}
	}
	tick := time.NewTicker(eventKeepAlive)
	defer tick.Stop()
	for {
		select {
		case <-c.r.Context().Done():
			return nil
		case <-tick.C:
			out.mu.Lock()
			err := out.write(": keep-alive\n\n")
			out.mu.Unlock()
			if err != nil {
				return nil
			}
			_ = out.flush()
		case e, ok := <-sub.C:
			if !ok {
				return nil
			}
			if !inScope(e) {
				continue
			}
			if err := out.id(e.Seq); err != nil {
				return nil
			}
			if err := out.send(e.Type, e); err != nil {
				return nil
			}
			if len(sub.C) == 0 {
				_ = out.flush()
			}
		}
	}
}
