package orchestrator

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
	"github.com/palvella/palvella/plugins/database/sqlite"
)

// sqliteDB is a real sqlite database in the test's directory.
func sqliteDB(t *testing.T) database.Database {
	t.Helper()
	db := sqlite.New()
	resp, err := db.Configure(context.Background(), &sdk.ConfigureRequest{Config: map[string]any{"path": filepath.Join(t.TempDir(), "p.db")}})
	if err != nil || sdk.HasErrors(resp.Diagnostics) {
		t.Fatalf("Configure: %v %v", err, resp)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// ackState is the state of a one-job run over a real sqlite database, its
// job's document stored queued and its queue item leased.
func ackState(t *testing.T) (*runState, database.Database, *database.QueueItem) {
	t.Helper()
	ctx := context.Background()
	db := sqliteDB(t)
	o := &Orchestrator{}
	o.store = newStore(func(context.Context) (database.Database, error) { return db, nil })
	run := &resource.Run{Meta: resource.Meta{Kind: resource.KindRun, Namespace: "default", Name: "p-1"}, Pipeline: "p", Status: resource.StatusRunning}
	st := newRunState(o, run, &plan{Jobs: []planJob{{Name: "build"}}}, nil)
	if err := st.updateJob(ctx, 0, func(j *resource.JobStatus) error { j.Status = resource.StatusQueued; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Enqueue(ctx, &database.EnqueueRequest{Queue: "jobs", ID: "default/p-1/build/1"}); err != nil {
		t.Fatal(err)
	}
	it, err := db.Lease(ctx, &database.LeaseRequest{Queue: "jobs", Holder: "w", TTL: time.Minute})
	if err != nil || it == nil {
		t.Fatalf("Lease: %+v %v", it, err)
	}
	return st, db, it
}

func storedStatus(t *testing.T, st *runState) resource.Status {
	t.Helper()
	doc := &resource.Job{}
	if err := st.o.store.get(context.Background(), resource.KindJob, "default", resource.JobResourceName("p-1", "build"), doc); err != nil {
		t.Fatal(err)
	}
	return doc.Status
}

func succeed(j *resource.JobStatus) error { j.Status = resource.StatusSuccess; return nil }

// A job's outcome and the ack of its queue item are one write: both are
// stored, and the item is gone.
func TestOutcomeWriteAcksTheItem(t *testing.T) {
	st, db, it := ackState(t)
	ack := &pendingAck{req: database.AckRequest{ID: it.ID, LeaseToken: it.LeaseToken}}
	if err := st.updateJobAcking(context.Background(), 0, ack, succeed); err != nil {
		t.Fatal(err)
	}
	if !ack.done.Load() {
		t.Fatal("the outcome's write did not ack the item")
	}
	if got := storedStatus(t, st); got != resource.StatusSuccess {
		t.Fatalf("stored status %s, want success", got)
	}
	if err := db.Ack(context.Background(), &database.AckRequest{ID: it.ID, LeaseToken: it.LeaseToken}); err == nil {
		t.Fatal("the item could still be acked: the batch did not remove it")
	}
}

// When the item's lease is no longer the job's (it lapsed and was leased
// again), the outcome is stored all the same, without the ack: the new
// holder finds the job ended.
func TestOutcomeIsStoredWhenTheAckFails(t *testing.T) {
	st, db, it := ackState(t)
	ctx := context.Background()
	if err := db.Nack(ctx, &database.NackRequest{ID: it.ID, LeaseToken: it.LeaseToken}); err != nil {
		t.Fatal(err)
	}
	again, err := db.Lease(ctx, &database.LeaseRequest{Queue: "jobs", Holder: "other", TTL: time.Minute})
	if err != nil || again == nil || again.LeaseToken == it.LeaseToken {
		t.Fatalf("lease again: %+v %v", again, err)
	}
	ack := &pendingAck{req: database.AckRequest{ID: it.ID, LeaseToken: it.LeaseToken}}
	if err := st.updateJobAcking(ctx, 0, ack, succeed); err != nil {
		t.Fatal(err)
	}
	if ack.done.Load() {
		t.Fatal("an ack with a stale lease token reported done")
	}
	if got := storedStatus(t, st); got != resource.StatusSuccess {
		t.Fatalf("stored status %s, want success: a failed ack must not lose the outcome", got)
	}
	if _, err := db.Renew(ctx, &database.RenewRequest{ID: again.ID, LeaseToken: again.LeaseToken, TTL: time.Minute}); err != nil {
		t.Fatalf("the new holder's lease: %v", err)
	}
}

// A document changed by another writer meanwhile is read again, the
// change applied to it, and the item acked with it.
func TestOutcomeWriteAfterAnotherWriterAcks(t *testing.T) {
	st, _, it := ackState(t)
	ctx := context.Background()
	other := &resource.Job{}
	name := resource.JobResourceName("p-1", "build")
	if err := st.o.store.get(ctx, resource.KindJob, "default", name, other); err != nil {
		t.Fatal(err)
	}
	other.Worker = "elsewhere"
	if err := st.o.store.update(ctx, other); err != nil {
		t.Fatal(err)
	}
	ack := &pendingAck{req: database.AckRequest{ID: it.ID, LeaseToken: it.LeaseToken}}
	if err := st.updateJobAcking(ctx, 0, ack, succeed); err != nil {
		t.Fatal(err)
	}
	doc := &resource.Job{}
	if err := st.o.store.get(ctx, resource.KindJob, "default", name, doc); err != nil {
		t.Fatal(err)
	}
	if !ack.done.Load() || doc.Status != resource.StatusSuccess || doc.Worker != "elsewhere" {
		t.Fatalf("acked %v, stored %s by %q; want acked, success, the other writer's change kept", ack.done.Load(), doc.Status, doc.Worker)
	}
}

// Only a job's very first execution skips clearing earlier logs: a retry,
// an interrupted or handed-back job, or a resumed one may have left some.
func TestFirstExecution(t *testing.T) {
	run := resource.Transition{Status: resource.StatusRunning}
	queued := resource.Transition{Status: resource.StatusQueued}
	for _, c := range []struct {
		name   string
		js     resource.JobStatus
		resume int
		want   bool
	}{
		{"first", resource.JobStatus{Attempt: 1, Transitions: []resource.Transition{queued, run}}, 0, true},
		{"retry", resource.JobStatus{Attempt: 2, Transitions: []resource.Transition{queued, run, queued, run}}, 0, false},
		{"picked up after a crash", resource.JobStatus{Attempt: 1, Interruptions: 1, Transitions: []resource.Transition{queued, run, run}}, 0, false},
		{"handed back at a stop", resource.JobStatus{Attempt: 1, Transitions: []resource.Transition{queued, run, queued, run}}, 0, false},
		{"resumed after an approval", resource.JobStatus{Attempt: 1, Transitions: []resource.Transition{queued, run}}, 1, false},
		{"no transitions (a remote worker's copy)", resource.JobStatus{Attempt: 1}, 0, false},
	} {
		if got := firstExecution(&c.js, c.resume); got != c.want {
			t.Errorf("%s: firstExecution = %v, want %v", c.name, got, c.want)
		}
	}
}

// countingDB is the real database, counting the documents created one
// call each.
type countingDB struct {
	database.Database
	creates, batches int
}

func (c *countingDB) Create(ctx context.Context, r *database.Resource) (*database.Resource, error) {
	c.creates++
	return c.Database.Create(ctx, r)
}

func (c *countingDB) Batch(ctx context.Context, ops []database.Op) ([]database.OpResult, error) {
	c.batches++
	return c.Database.(database.Batcher).Batch(ctx, ops)
}

// fanState is the state of a stored run first -> j0..j(n-1) -> last over a
// real sqlite database, with first just ended (its document written).
func fanState(t *testing.T, n int) (*runState, *countingDB) {
	t.Helper()
	ctx := context.Background()
	counted := &countingDB{Database: sqliteDB(t)}
	o := &Orchestrator{opts: Options{Now: time.Now}}
	o.store = newStore(func(context.Context) (database.Database, error) { return counted, nil })
	run := &resource.Run{Meta: resource.Meta{Kind: resource.KindRun, Namespace: "default", Name: "p-1", Labels: map[string]string{"active": "true"}}, Pipeline: "p", Status: resource.StatusRunning}
	if err := o.store.create(ctx, run); err != nil {
		t.Fatal(err)
	}
	st := newRunState(o, run, fanPlan(n), nil)
	if err := st.updateJob(ctx, 0, succeed); err != nil {
		t.Fatal(err)
	}
	counted.creates, counted.batches = 0, 0
	return st, counted
}

func jobCount(t *testing.T, db *countingDB) (int, int64) {
	t.Helper()
	resp, err := db.List(context.Background(), &database.ListRequest{Kind: resource.KindJob, PageSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.Items), resp.Revision
}

// The jobs a change makes ready are written in one batch: a fan-out's
// documents all appear at once, each with its revision in the state.
func TestAdvanceWritesAFanOutInOneBatch(t *testing.T) {
	st, db := fanState(t, 50)
	_, before := jobCount(t, db)
	items, err := st.o.advanceRun(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	n, after := jobCount(t, db)
	if len(items) != 50 || n != 51 {
		t.Fatalf("queued %d items and stored %d job documents, want 50 and 51 (first and the fan-out)", len(items), n)
	}
	if db.batches != 1 || db.creates != 0 {
		t.Fatalf("%d batches and %d single creates, want the 50 documents in 1 batch", db.batches, db.creates)
	}
	for i := 1; i <= 50; i++ {
		if st.rev[i] == 0 || st.rev[i] > after || st.rev[i] <= before || st.run.Jobs[i].Status != resource.StatusQueued {
			t.Fatalf("job %d: revision %d (stored %d..%d), status %s", i, st.rev[i], before, after, st.run.Jobs[i].Status)
		}
	}
	// The state is the documents': a write guarded by its revision passes.
	if err := st.updateJob(context.Background(), 1, func(j *resource.JobStatus) error { j.Status = resource.StatusRunning; return nil }); err != nil {
		t.Fatalf("a write after the batch: %v", err)
	}
}

// When another server decided one of the jobs first, the batch is refused
// as a whole and the advance is made write by write, taking the other
// server's decision for that job.
func TestAdvanceFallsBackWhenAnotherServerWroteAJob(t *testing.T) {
	st, db := fanState(t, 3)
	ctx := context.Background()
	other := st.jobDoc(resource.JobStatus{Name: "j1", Status: resource.StatusQueued}, 0)
	if err := st.o.store.create(ctx, other); err != nil {
		t.Fatal(err)
	}
	db.creates = 0
	items, err := st.o.advanceRun(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, it := range items {
		names = append(names, it.Job)
	}
	if n, _ := jobCount(t, db); n != 4 || len(names) != 2 || names[0] != "j0" || names[1] != "j2" {
		t.Fatalf("stored %d job documents and queued %v; want 4, and j0 and j2 (j1 was the other server's)", n, names)
	}
	if db.batches != 1 || db.creates != 3 {
		t.Fatalf("%d batches and %d single creates; want the refused batch, then j0, j1 (refused: it exists) and j2 one by one", db.batches, db.creates)
	}
	if st.rev[2] != other.Revision || st.run.Jobs[2].Status != resource.StatusQueued {
		t.Fatalf("j1 in the state: revision %d, status %s; want the other server's revision %d", st.rev[2], st.run.Jobs[2].Status, other.Revision)
	}
}
