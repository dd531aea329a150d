package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/core/store"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

func TestBatchAgainstSQLite(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, nil)
	old := record("old", nil)
	if err := s.Create(ctx, old); err != nil {
		t.Fatal(err)
	}

	// A record created then updated in a batch is written once, with its
	// last content; revisions are filled in by Commit.
	b := s.Batch()
	fresh := record("fresh", map[string]string{"pipeline": "p"})
	if err := b.Create(fresh); err != nil {
		t.Fatal(err)
	}
	later := *fresh
	later.Outcome = resource.TriggerStarted
	if err := b.Update(&later); err != nil {
		t.Fatal(err)
	}
	old.Outcome = resource.TriggerFailed
	if err := b.Update(old); err != nil {
		t.Fatal(err)
	}
	b.Enqueue(&database.EnqueueRequest{Queue: "jobs", ID: "fresh/1"})
	if b.Len() != 3 {
		t.Fatalf("batch holds %d writes, want 3 (the create and update of one record merged)", b.Len())
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	var got resource.TriggerRecord
	if err := s.Get(ctx, resource.KindTriggerRecord, "default", "fresh", &got); err != nil || got.Outcome != resource.TriggerStarted || got.Revision != later.Revision || later.Revision == 0 {
		t.Fatalf("stored %+v (%v); want the last content, at the revision Commit filled in (%d)", got, err, later.Revision)
	}

	// A failed write keeps nothing and names the resource.
	b = s.Batch()
	if err := b.Create(record("never", nil)); err != nil {
		t.Fatal(err)
	}
	stale := *old
	stale.Revision = 1
	if err := b.Update(&stale); err != nil {
		t.Fatal(err)
	}
	err := b.Commit(ctx)
	var oe *store.OpError
	if !errors.Is(err, sdk.ErrConflict) || !errors.As(err, &oe) || oe.Key.Name != "old" {
		t.Fatalf("Commit with a stale update: %v; want sdk.ErrConflict naming record old", err)
	}
	if err := s.Get(ctx, resource.KindTriggerRecord, "default", "never", &got); !errors.Is(err, sdk.ErrNotFound) {
		t.Fatalf("the create of a failed batch was kept (Get error %v)", err)
	}
}
