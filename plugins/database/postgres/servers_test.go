package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palvella/palvella/plugin-sdk/database"
	"github.com/palvella/palvella/plugins/database/postgres/pgtest"
)

// Several servers on one database, each with its own plugin (its own pool
// and listener), as items 2-7 of issue 14 will run them.

// TestWatchAcrossServersSeesEveryWriteInOrder: two servers write at once;
// a watcher on a third gets every write exactly once, in increasing
// revision order, woken by the others' notifications.
func TestWatchAcrossServersSeesEveryWriteInOrder(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	writers := []*Plugin{openAt(t, dsn), openAt(t, dsn)}
	watcher := openAt(t, dsn)
	ctx := context.Background()
	const perWriter = 60

	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var seen []database.Event
	errStop := errors.New("all seen")
	watched := make(chan error, 1)
	go func() {
		watched <- watcher.Watch(wctx, &database.WatchRequest{Kind: "Run"}, func(ev database.Event) error {
			seen = append(seen, ev)
			if len(seen) == 2*perWriter*2 {
				return errStop
			}
			return nil
		})
	}()

	var (
		mu        sync.Mutex
		revisions = map[int64]string{}
		wg        sync.WaitGroup
		fails     = make(chan error, 2*perWriter)
	)
	for w, db := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				r, err := db.Create(ctx, &database.Resource{Key: database.Key{Kind: "Run", Name: fmt.Sprintf("w%d-%d", w, i)}})
				if err != nil {
					fails <- err
					return
				}
				r.Data = []byte("updated")
				u, err := db.Update(ctx, r)
				if err != nil {
					fails <- err
					return
				}
				mu.Lock()
				revisions[r.Revision] = "created " + r.Key.Name
				revisions[u.Revision] = "updated " + r.Key.Name
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(fails)
	for err := range fails {
		t.Fatalf("write: %v", err)
	}
	if err := <-watched; !errors.Is(err, errStop) {
		t.Fatalf("watch ended with %v after %d of %d events", err, len(seen), len(revisions))
	}
	for i, ev := range seen {
		if i > 0 && ev.Resource.Revision <= seen[i-1].Resource.Revision {
			t.Fatalf("event %d has revision %d after %d", i, ev.Resource.Revision, seen[i-1].Resource.Revision)
		}
		want, ok := revisions[ev.Resource.Revision]
		if got := ev.Type.String() + " " + ev.Resource.Key.Name; !ok || got != want {
			t.Fatalf("event at revision %d is %q, want %q", ev.Resource.Revision, got, want)
		}
	}
}

// fenceOf reads the fencing number at the start of a lease token.
func fenceOf(token string) (int64, error) {
	n, err := strconv.ParseInt(strings.SplitN(token, ".", 2)[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("lease token %q does not start with a fencing number", token)
	}
	return n, nil
}

func fence(t *testing.T, token string) int64 {
	t.Helper()
	n, err := fenceOf(token)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLeasersOnSeveralServersNeverShareAnItem: servers lease from one
// queue at once (FOR UPDATE SKIP LOCKED); each item is handed out once,
// and each lease carries a fencing number no other lease has.
func TestLeasersOnSeveralServersNeverShareAnItem(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	servers := []*Plugin{openAt(t, dsn), openAt(t, dsn), openAt(t, dsn)}
	ctx := context.Background()
	const n = 150
	for i := range n {
		if _, err := servers[i%3].Enqueue(ctx, &database.EnqueueRequest{Queue: "jobs", ID: fmt.Sprintf("job-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu     sync.Mutex
		handed = map[string]int{}
		fences = map[int64]string{}
		wg     sync.WaitGroup
		fails  = make(chan string, 2*n)
	)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db := servers[w%3]
			for {
				it, err := db.Lease(ctx, &database.LeaseRequest{Queue: "jobs", Holder: fmt.Sprintf("w%d", w), TTL: time.Minute})
				if err != nil {
					fails <- err.Error()
					return
				}
				if it == nil {
					return
				}
				f, err := fenceOf(it.LeaseToken)
				if err != nil {
					fails <- err.Error()
					return
				}
				mu.Lock()
				handed[it.ID]++
				if other, ok := fences[f]; ok {
					fails <- fmt.Sprintf("fencing number %d given to %s and %s", f, other, it.ID)
				}
				fences[f] = it.ID
				mu.Unlock()
				// Acked through another server: the token is the database's.
				if err := servers[(w+1)%3].Ack(ctx, &database.AckRequest{ID: it.ID, LeaseToken: it.LeaseToken}); err != nil {
					fails <- err.Error()
					return
				}
			}
		}()
	}
	wg.Wait()
	close(fails)
	for f := range fails {
		t.Error(f)
	}
	if len(handed) != n {
		t.Fatalf("%d items handed out, want %d", len(handed), n)
	}
	for id, k := range handed {
		if k != 1 {
			t.Errorf("item %s handed out %d times", id, k)
		}
	}
}

// TestALaterLeaseHasAGreaterFencingNumber: an item leased again after its
// lease expired carries a greater number, and the earlier holder is
// fenced out.
func TestALaterLeaseHasAGreaterFencingNumber(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	a, b := openAt(t, dsn), openAt(t, dsn)
	ctx := context.Background()
	if _, err := a.Enqueue(ctx, &database.EnqueueRequest{Queue: "jobs", ID: "x"}); err != nil {
		t.Fatal(err)
	}
	first, err := a.Lease(ctx, &database.LeaseRequest{Queue: "jobs", Holder: "a", TTL: 100 * time.Millisecond})
	if err != nil || first == nil {
		t.Fatalf("Lease: %+v, %v", first, err)
	}
	var second *database.QueueItem
	for deadline := time.Now().Add(10 * time.Second); second == nil; {
		if time.Now().After(deadline) {
			t.Fatal("the expired lease was not handed out again")
		}
		time.Sleep(50 * time.Millisecond)
		if second, err = b.Lease(ctx, &database.LeaseRequest{Queue: "jobs", Holder: "b", TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	if fence(t, second.LeaseToken) <= fence(t, first.LeaseToken) {
		t.Fatalf("second lease's fencing number %d is not greater than the first's %d", fence(t, second.LeaseToken), fence(t, first.LeaseToken))
	}
	if _, err := a.Renew(ctx, &database.RenewRequest{ID: "x", LeaseToken: first.LeaseToken, TTL: time.Minute}); err == nil {
		t.Fatal("the first holder renewed a lease another server holds")
	}
}
