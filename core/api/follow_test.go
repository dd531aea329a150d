package api

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/palvella/palvella/core/events"
	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// The fake backend follows runs too: two lines of the only action, an
// event stream that has ended, one trigger record.

var _ Following = (*fakeBackend)(nil)

func (b *fakeBackend) FollowLogs(_ context.Context, ns, run, job, action string, fn func([]LogLine) error) (*StreamEnd, error) {
	if run == "missing-1" {
		return nil, sdk.Errorf(sdk.ErrNotFound, "run", "no run %s", run)
	}
	if err := fn([]LogLine{{Job: "test", Action: "unit", Line: "2026-01-01T00:00:00Z stdout one"}}); err != nil {
		return nil, err
	}
	if err := fn([]LogLine{{Job: "test", Action: "unit", Line: "2026-01-01T00:00:01Z stdout two"}}); err != nil {
		return nil, err
	}
	return &StreamEnd{Status: resource.StatusFailure, Reason: "exit 1"}, nil
}

func (b *fakeBackend) Events(f events.Filter, replay bool, after uint64) (*events.Subscription, error) {
	var bus events.Bus
	s := bus.Subscribe(f, replay, after, 16)
	s.Close()
	return s, nil
}

func (b *fakeBackend) DumpRun(ctx context.Context, ns, run string) (*RunDump, error) {
	r, _ := b.GetRun(ctx, ns, run)
	return &RunDump{Run: r, Logs: map[string]string{"test/unit": "one\n"}}, nil
}

func (b *fakeBackend) ListTriggerRecords(_ context.Context, ns, pipeline string, _ PageRequest) (*Page[resource.TriggerRecord], error) {
	return &Page[resource.TriggerRecord]{Items: []resource.TriggerRecord{{Meta: resource.Meta{Namespace: ns, Name: "r1"}, Pipeline: "build", Outcome: resource.TriggerStarted}}}, nil
}

func (b *fakeBackend) GetTriggerRecord(_ context.Context, ns, name string) (*resource.TriggerRecord, error) {
	return &resource.TriggerRecord{Meta: resource.Meta{Namespace: ns, Name: name}, Outcome: resource.TriggerRejected, Reason: "unsigned"}, nil
}

func (b *fakeBackend) Metrics() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("palvella_runs_active 1\n"))
	})
}

type sseEvent struct{ name, data string }

func parseSSE(t *testing.T, body string) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.name != "" {
				out = append(out, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data = strings.TrimPrefix(line, "data: ")
		}
	}
	return out
}

func TestRunLogStreamIsServerSentEvents(t *testing.T) {
	f := newFixture(t, Options{})
	r := f.do(t, http.MethodGet, "/api/v1/namespaces/default/runs/build-7/logs/stream", "admin-token", "")
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d type %q: %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	evs := parseSSE(t, string(r.body))
	if len(evs) != 3 || evs[0].name != "line" || evs[1].name != "line" || evs[2].name != "end" {
		t.Fatalf("events %+v", evs)
	}
	var l LogLine
	if err := json.Unmarshal([]byte(evs[1].data), &l); err != nil || l.Job != "test" || !strings.HasSuffix(l.Line, "two") {
		t.Fatalf("second line %q (%v)", evs[1].data, err)
	}
	var end StreamEnd
	if err := json.Unmarshal([]byte(evs[2].data), &end); err != nil || end.Status != resource.StatusFailure || end.Reason != "exit 1" {
		t.Fatalf("end %q (%v)", evs[2].data, err)
	}
}

func TestLogStreamOfAMissingRunIsA404(t *testing.T) {
	f := newFixture(t, Options{})
	r := f.do(t, http.MethodGet, "/api/v1/namespaces/default/runs/missing-1/logs/stream", "admin-token", "")
	if r.status != http.StatusNotFound {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if e := r.err(t); e.Code != CodeNotFound {
		t.Errorf("code %q", e.Code)
	}
}

func TestTimelineMeasuresQueueWaitAndRunTime(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) *time.Time { v := t0.Add(time.Duration(s) * time.Second); return &v }
	run := &resource.Run{Meta: resource.Meta{Name: "build-7"}, Status: resource.StatusRunning, QueuedAt: at(0), StartedAt: at(1),
		Jobs: []resource.JobStatus{
			{Name: "a", Status: resource.StatusSuccess, QueuedAt: at(1), StartedAt: at(3), FinishedAt: at(10),
				Actions: []resource.ActionStatus{{Name: "x", Status: resource.StatusSuccess, StartedAt: at(3), FinishedAt: at(9)}}},
			{Name: "b", Status: resource.StatusRunning, QueuedAt: at(1), StartedAt: at(2)},
			{Name: "c", Status: resource.StatusPending},
		}}
	tl := TimelineOf(run, *at(20))
	if tl.DurationMs != 20000 {
		t.Errorf("run duration %d ms, want 20000 (until now)", tl.DurationMs)
	}
	if j := tl.Jobs[0]; j.QueueWaitMs != 2000 || j.RunMs != 7000 || j.Actions[0].RunMs != 6000 {
		t.Errorf("job a: %+v", j)
	}
	if j := tl.Jobs[1]; j.QueueWaitMs != 1000 || j.RunMs != 18000 {
		t.Errorf("job b (running): %+v", j)
	}
	if j := tl.Jobs[2]; j.QueueWaitMs != 0 || j.RunMs != 0 {
		t.Errorf("job c (pending): %+v", j)
	}
}

func TestEventStreamRejectsABadAfter(t *testing.T) {
	f := newFixture(t, Options{})
	r := f.do(t, http.MethodGet, "/api/v1/events?after=x", "admin-token", "")
	if r.status != http.StatusBadRequest {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if e := r.err(t); e.Field != "after" {
		t.Errorf("field %q", e.Field)
	}
}
