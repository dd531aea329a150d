package trigger

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/core/spec"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

// memDB is the part of a database the trigger service uses, in memory.
type memDB struct {
	database.Database
	mu    sync.Mutex
	rev   int64
	items map[database.Key]*database.Resource
}

func newMemDB() *memDB { return &memDB{items: map[database.Key]*database.Resource{}} }

func (m *memDB) Get(_ context.Context, k database.Key) (*database.Resource, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.items[k]
	if !ok {
		return nil, sdk.Errorf(sdk.ErrNotFound, "", "%s %s/%s not found", k.Kind, k.Namespace, k.Name)
	}
	c := *r
	return &c, nil
}

func (m *memDB) List(_ context.Context, req *database.ListRequest) (*database.ListResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []database.Resource
	for k, r := range m.items {
		if k.Kind != req.Kind || (req.Namespace != "" && k.Namespace != req.Namespace) {
			continue
		}
		ok := true
		for lk, lv := range req.LabelSelector {
			if r.Labels[lk] != lv {
				ok = false
			}
		}
		if ok {
			out = append(out, *r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Key.Namespace+"/"+out[i].Key.Name < out[j].Key.Namespace+"/"+out[j].Key.Name
	})
	return &database.ListResponse{Items: out, Revision: m.rev}, nil
}

func (m *memDB) Create(_ context.Context, r *database.Resource) (*database.Resource, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.items[r.Key]; ok {
		return nil, sdk.Errorf(sdk.ErrAlreadyExists, "", "exists")
	}
	m.rev++
	c := *r
	c.Revision, c.CreatedAt, c.UpdatedAt = m.rev, time.Now(), time.Now()
	m.items[r.Key] = &c
	return &c, nil
}

func (m *memDB) Update(_ context.Context, r *database.Resource) (*database.Resource, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.items[r.Key]
	if !ok {
		return nil, sdk.Errorf(sdk.ErrNotFound, "", "not found")
	}
	if old.Revision != r.Revision {
		return nil, sdk.Errorf(sdk.ErrConflict, "", "conflict")
	}
	m.rev++
	c := *r
	c.Revision, c.CreatedAt, c.UpdatedAt = m.rev, old.CreatedAt, time.Now()
	m.items[r.Key] = &c
	return &c, nil
}

func (m *memDB) Delete(_ context.Context, req *database.DeleteRequest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.items[req.Key]; !ok {
		return sdk.Errorf(sdk.ErrNotFound, "", "not found")
	}
	delete(m.items, req.Key)
	return nil
}

func (m *memDB) count(kind string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k := range m.items {
		if k.Kind == kind {
			n++
		}
	}
	return n
}

type noRunner struct{}

func (noRunner) StartRun(context.Context, string, string, map[string]string, resource.TriggerInfo) (*resource.Run, error) {
	return &resource.Run{Meta: resource.Meta{Name: "r-1"}}, nil
}

func newTestService(t *testing.T, db *memDB, opts Options) *Service {
	t.Helper()
	opts.Database = func(context.Context) (database.Database, error) { return db, nil }
	opts.Runner = noRunner{}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// putPipeline stores a pipeline with one webhook trigger "hook".
func putPipeline(t *testing.T, db *memDB, ns, name, credential string) {
	t.Helper()
	p := spec.Pipeline{APIVersion: "palvella.dev/v1", Kind: "Pipeline"}
	p.Metadata.Name, p.Metadata.Namespace = name, ns
	p.Spec.Triggers = []spec.Trigger{{Type: spec.TriggerWebhook, Name: "hook", Secret: &spec.Value{FromCredential: credential}}}
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	pl := resource.Pipeline{Meta: resource.Meta{Kind: resource.KindPipeline, Namespace: ns, Name: name}, Spec: raw}
	data, _ := json.Marshal(pl)
	if _, err := db.Create(context.Background(), &database.Resource{Key: database.Key{Kind: resource.KindPipeline, Namespace: ns, Name: name}, Data: data}); err != nil {
		t.Fatal(err)
	}
}

func post(t *testing.T, h http.Handler, path, body string, headers ...string) (int, WebhookResponse) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var resp WebhookResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatalf("%s: %v: %s", path, err, w.Body.String())
	}
	return w.Code, resp
}

func TestUnknownWebhooksLeaveNoRecordAndNameNothing(t *testing.T) {
	db := newMemDB()
	putPipeline(t, db, "default", "ci", "no-such-credential")
	s := newTestService(t, db, Options{Secret: func(_ context.Context, _, _, name string) ([]byte, error) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "", "credential %q not found", name)
	}})
	h := s.WebhookHandler()
	for _, path := range []string{
		"/hooks/default/nothing-here/hook", "/hooks/nowhere/ci/hook", "/hooks/default/ci/no-trigger",
		"/hooks/default/ci/hook/extra", "/hooks/bad%20name/ci/hook", "/elsewhere",
	} {
		code, resp := post(t, h, path, `{"ref": "x"}`, HeaderSignature, "sha256=00")
		if code != http.StatusNotFound || resp.Error != errNotFound || resp.Record != "" {
			t.Errorf("%s: %d %+v", path, code, resp)
		}
	}
	if n := db.count(resource.KindTriggerRecord); n != 0 {
		t.Errorf("%d records after calls for no trigger", n)
	}
	// An unreadable secret: the record says why, the caller learns nothing.
	code, resp := post(t, h, "/hooks/default/ci/hook", `{}`, HeaderSignature, "sha256=00")
	if code != http.StatusServiceUnavailable || strings.Contains(resp.Error, "no-such-credential") || resp.Record == "" {
		t.Errorf("unreadable secret: %d %+v", code, resp)
	}
	rec, err := s.GetRecord(context.Background(), "default", resp.Record)
	if err != nil || !strings.Contains(rec.Reason, `credential "no-such-credential"`) {
		t.Errorf("record %+v %v", rec, err)
	}
}

func TestRecordsArePrunedByAgeAndCap(t *testing.T) {
	db := newMemDB()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	s := newTestService(t, db, Options{Now: func() time.Time { return now }, MaxRecords: 10, RecordRetention: 30 * 24 * time.Hour})
	ctx := context.Background()
	add := func(pipeline, name string, at time.Time) {
		rec := &resource.TriggerRecord{Meta: resource.Meta{Namespace: "default", Name: name}, Type: "webhook", Pipeline: pipeline, Trigger: "hook", FiredAt: at, Outcome: resource.TriggerRejected}
		rec.Kind = resource.KindTriggerRecord
		rec.Labels = recordLabels(rec)
		if err := s.create(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	// a: 15 recent rejections, 3 recent claims, 2 old claims, 1 old record.
	for i := range 15 {
		add("a", fmt.Sprintf("r%02d", i), now.Add(-time.Duration(i)*time.Minute))
	}
	for i := range 3 {
		add("a", fmt.Sprintf("wh-recent%d", i), now.Add(-time.Duration(100+i)*time.Minute))
	}
	add("a", "wh-old0", now.Add(-31*24*time.Hour))
	add("a", "wh-old1", now.Add(-40*24*time.Hour))
	add("a", "old", now.Add(-31*24*time.Hour))
	// b: 5 recent records, untouched.
	for i := range 5 {
		add("b", fmt.Sprintf("b%d", i), now.Add(-time.Hour))
	}
	n, err := s.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 5+3 {
		t.Errorf("deleted %d, want 8 (5 beyond the cap, 3 past the retention)", n)
	}
	left := map[string]bool{}
	recs, _, _ := s.ListRecords(ctx, "default", "", 1000, "")
	for _, r := range recs {
		left[r.Name] = true
	}
	for _, want := range []string{"r00", "r09", "wh-recent0", "wh-recent2", "b0", "b4"} {
		if !left[want] {
			t.Errorf("%s was deleted", want)
		}
	}
	for _, gone := range []string{"r10", "r14", "wh-old0", "wh-old1", "old"} {
		if left[gone] {
			t.Errorf("%s was kept", gone)
		}
	}
}

func TestAFloodOfRefusedCallsStaysNearTheCap(t *testing.T) {
	db := newMemDB()
	putPipeline(t, db, "default", "ci", "hook-secret")
	s := newTestService(t, db, Options{MaxRecords: 50, Secret: func(context.Context, string, string, string) ([]byte, error) { return []byte("k"), nil }})
	h := s.WebhookHandler()
	for range 1000 {
		if code, _ := post(t, h, "/hooks/default/ci/hook", `{}`); code != http.StatusUnauthorized {
			t.Fatalf("unsigned call: %d", code)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for db.count(resource.KindTriggerRecord) > 55 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := db.count(resource.KindTriggerRecord); n > 55 {
		t.Errorf("%d records after 1000 unsigned calls, cap 50", n)
	}
}
