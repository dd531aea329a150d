package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

func TestWatchBeforeTheCompactedHistoryIsRefused(t *testing.T) {
	st, clk := testStore(t)
	ctx := context.Background()
	for _, name := range []string{"a", "b"} {
		if _, err := st.create(ctx, &database.Resource{Key: database.Key{Kind: "Run", Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	clk.advance(48 * time.Hour)
	c, err := st.create(ctx, &database.Resource{Key: database.Key{Kind: "Run", Name: "c"}})
	if err != nil {
		t.Fatal(err)
	}
	removed, err := st.compact(ctx, clk.now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if removed != 2 {
		t.Fatalf("compaction removed %d changes, want the 2 older than a day", removed)
	}

	err = st.watch(ctx, &database.WatchRequest{Kind: "Run"}, func(database.Event) error { return nil })
	var typed *sdk.Error
	if !errors.Is(err, sdk.ErrFailedPrecondition) || !errors.As(err, &typed) || typed.Field != "afterRevision" {
		t.Fatalf("watch from revision 0 after compaction error = %v, want sdk.ErrFailedPrecondition about afterRevision", err)
	}

	list, err := st.list(ctx, &database.ListRequest{Kind: "Run"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 3 || list.Revision != c.Revision {
		t.Fatalf("list after compaction = %d items at revision %d, want 3 at %d", len(list.Items), list.Revision, c.Revision)
	}
	errStop := errors.New("stop")
	var seen string
	d, err := st.create(ctx, &database.Resource{Key: database.Key{Kind: "Run", Name: "d"}})
	if err != nil {
		t.Fatal(err)
	}
	err = st.watch(ctx, &database.WatchRequest{Kind: "Run", AfterRevision: list.Revision}, func(ev database.Event) error {
		seen = ev.Resource.Key.Name
		return errStop
	})
	if !errors.Is(err, errStop) || seen != "d" {
		t.Fatalf("watch after the list's revision = %v, saw %q, want the creation of d (revision %d)", err, seen, d.Revision)
	}
}

func TestRevisionsKeepIncreasingAfterCompaction(t *testing.T) {
	st, clk := testStore(t)
	ctx := context.Background()
	a, err := st.create(ctx, &database.Resource{Key: database.Key{Kind: "Run", Name: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Hour)
	if _, err := st.compact(ctx, clk.now()); err != nil {
		t.Fatal(err)
	}
	b, err := st.create(ctx, &database.Resource{Key: database.Key{Kind: "Run", Name: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if b.Revision <= a.Revision {
		t.Fatalf("revision after compacting everything = %d, want more than %d", b.Revision, a.Revision)
	}
}

func TestConfigureRefusesABadHistory(t *testing.T) {
	for _, v := range []any{"soon", "-1h", 3.0} {
		resp, err := New().Configure(context.Background(), &sdk.ConfigureRequest{Config: map[string]any{"path": t.TempDir() + "/x.db", "history": v}})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Diagnostics) != 1 || resp.Diagnostics[0].Field != "config.history" {
			t.Errorf("history %v: diagnostics = %+v, want one about config.history", v, resp.Diagnostics)
		}
	}
}
