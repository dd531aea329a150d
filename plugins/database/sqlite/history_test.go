package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

// The history keeps at most its newest N changes, whatever their age; a
// watch from before them is refused, one from within them goes on.
func TestHistoryIsBoundedByCount(t *testing.T) {
	st, _ := testStore(t)
	ctx := context.Background()
	var last *database.Resource
	for i := range 50 {
		r, err := st.create(ctx, &database.Resource{Key: database.Key{Kind: "Job", Name: fmt.Sprintf("j%d", i)}, Data: []byte("{}")})
		if err != nil {
			t.Fatal(err)
		}
		last = r
	}
	removed, err := st.compactCount(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if removed != 40 {
		t.Fatalf("compaction by count removed %d changes, want 40", removed)
	}
	var n int
	if err := st.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM changes`).Scan(&n); err != nil || n != 10 {
		t.Fatalf("changes left = %d (%v), want 10", n, err)
	}
	if err := st.watch(ctx, &database.WatchRequest{Kind: "Job", AfterRevision: 1}, func(database.Event) error { return nil }); !errors.Is(err, sdk.ErrFailedPrecondition) {
		t.Fatalf("watch from before the kept changes = %v, want ErrFailedPrecondition", err)
	}
	errStop := errors.New("stop")
	seen := 0
	err = st.watch(ctx, &database.WatchRequest{Kind: "Job", AfterRevision: last.Revision - 5}, func(database.Event) error {
		if seen++; seen == 5 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("watch within the kept changes = %v after %d events", err, seen)
	}
	if removed, err := st.compactCount(ctx, 10); err != nil || removed != 0 {
		t.Fatalf("compacting again removed %d (%v), want 0", removed, err)
	}
}

// A page of large documents ends early, with a token, so that it fits in
// one message; following the tokens lists everything once.
func TestListPageIsBoundedInBytes(t *testing.T) {
	st, _ := testStore(t)
	ctx := context.Background()
	big := bytes.Repeat([]byte("x"), 300<<10)
	for i := range 20 {
		if _, err := st.create(ctx, &database.Resource{Key: database.Key{Kind: "Job", Name: fmt.Sprintf("j%02d", i)}, Data: big}); err != nil {
			t.Fatal(err)
		}
	}
	seen, pages, token := 0, 0, ""
	for {
		resp, err := st.list(ctx, &database.ListRequest{Kind: "Job", PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		size := 0
		for _, r := range resp.Items {
			size += len(r.Data)
		}
		if size > listBytes+len(big) {
			t.Fatalf("page %d holds %d bytes, more than %d", pages, size, listBytes+len(big))
		}
		seen += len(resp.Items)
		if resp.NextPageToken == "" {
			break
		}
		token = resp.NextPageToken
	}
	if seen != 20 || pages < 2 {
		t.Fatalf("listed %d documents in %d pages, want 20 in several", seen, pages)
	}
}
