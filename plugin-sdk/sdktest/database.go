package sdktest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

// DatabaseSuite is the conformance suite of database plugins. Each subtest
// gets a fresh plugin from newPlugin, configured and empty. Durability is
// checked separately by DatabaseDurability, which needs to reopen data.
func DatabaseSuite(t *testing.T, newPlugin Factory[database.Database]) {
	ctx := context.Background()

	t.Run("describe", func(t *testing.T) {
		checkManifest(t, newPlugin(t), sdk.CategoryDatabase)
	})

	t.Run("create then get returns what was stored", func(t *testing.T) {
		db := newPlugin(t)
		in := &database.Resource{
			Key:    database.Key{Kind: "Pipeline", Namespace: "team-a", Name: "build"},
			Labels: map[string]string{"app": "web", "tier": "front"},
			Data:   []byte(`{"spec":{"jobs":3}}`),
		}
		created, err := db.Create(ctx, in)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if created.Revision <= 0 {
			t.Fatalf("Create returned revision %d, want > 0", created.Revision)
		}
		if created.CreatedAt.IsZero() || created.UpdatedAt.IsZero() {
			t.Errorf("Create returned no timestamps: %+v", created)
		}
		got, err := db.Get(ctx, in.Key)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if got.Key != in.Key || got.Revision != created.Revision || string(got.Data) != string(in.Data) {
			t.Fatalf("Get = %+v, want key %v, revision %d, data %s", got, in.Key, created.Revision, in.Data)
		}
		if fmt.Sprint(got.Labels) != fmt.Sprint(in.Labels) {
			t.Errorf("labels = %v, want %v", got.Labels, in.Labels)
		}
		if !got.CreatedAt.Equal(created.CreatedAt) {
			t.Errorf("CreatedAt changed between Create (%v) and Get (%v)", created.CreatedAt, got.CreatedAt)
		}
		_, err = db.Create(ctx, in)
		if !errors.Is(err, sdk.ErrAlreadyExists) {
			t.Fatalf("second Create error = %v, want sdk.ErrAlreadyExists", err)
		}
		again, err := db.Get(ctx, in.Key)
		if err != nil || again.Revision != created.Revision {
			t.Fatalf("a refused Create changed the stored resource: %+v, %v", again, err)
		}
		same := database.Key{Kind: "Pipeline", Namespace: "team-b", Name: "build"}
		if _, err := db.Create(ctx, &database.Resource{Key: same}); err != nil {
			t.Fatalf("the same name in another namespace must be another resource: %v", err)
		}
	})

	t.Run("get of a missing resource is not found", func(t *testing.T) {
		_, err := newPlugin(t).Get(ctx, database.Key{Kind: "Run", Name: "missing"})
		if !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("Get(missing) error = %v, want sdk.ErrNotFound", err)
		}
	})

	t.Run("update checks the revision", func(t *testing.T) {
		db := newPlugin(t)
		key := database.Key{Kind: "Run", Namespace: "ns", Name: "r1"}
		created := mustCreate(t, db, key, nil, "v1")
		upd := *created
		upd.Data = []byte("v2")
		upd.Labels = map[string]string{"status": "running"}
		updated, err := db.Update(ctx, &upd)
		if err != nil {
			t.Fatalf("Update with the current revision: %v", err)
		}
		if updated.Revision <= created.Revision {
			t.Fatalf("Update returned revision %d, want greater than %d", updated.Revision, created.Revision)
		}
		if !updated.CreatedAt.Equal(created.CreatedAt) {
			t.Errorf("Update changed CreatedAt from %v to %v", created.CreatedAt, updated.CreatedAt)
		}

		stale := *created
		stale.Data = []byte("lost update")
		if _, err := db.Update(ctx, &stale); !errors.Is(err, sdk.ErrConflict) {
			t.Fatalf("Update with a stale revision error = %v, want sdk.ErrConflict", err)
		}
		got, err := db.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if string(got.Data) != "v2" || got.Revision != updated.Revision || got.Labels["status"] != "running" {
			t.Fatalf("after a conflicting Update the stored resource is %+v, want the first update", got)
		}

		missing := database.Resource{Key: database.Key{Kind: "Run", Name: "nope"}, Revision: 1}
		if _, err := db.Update(ctx, &missing); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("Update of a missing resource error = %v, want sdk.ErrNotFound", err)
		}
	})

	t.Run("delete checks the revision when given", func(t *testing.T) {
		db := newPlugin(t)
		key := database.Key{Kind: "Run", Name: "d1"}
		created := mustCreate(t, db, key, nil, "x")
		err := db.Delete(ctx, &database.DeleteRequest{Key: key, ExpectedRevision: created.Revision + 1000})
		if !errors.Is(err, sdk.ErrConflict) {
			t.Fatalf("Delete with a wrong revision error = %v, want sdk.ErrConflict", err)
		}
		if _, err := db.Get(ctx, key); err != nil {
			t.Fatalf("a refused Delete removed the resource: %v", err)
		}
		if err := db.Delete(ctx, &database.DeleteRequest{Key: key, ExpectedRevision: created.Revision}); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := db.Get(ctx, key); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("Get after Delete error = %v, want sdk.ErrNotFound", err)
		}
		if err := db.Delete(ctx, &database.DeleteRequest{Key: key}); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("second Delete error = %v, want sdk.ErrNotFound", err)
		}
		again := mustCreate(t, db, key, nil, "y")
		if again.Revision <= created.Revision {
			t.Fatalf("re-created resource has revision %d, want greater than %d", again.Revision, created.Revision)
		}
	})

	t.Run("revisions are global and increase", func(t *testing.T) {
		db := newPlugin(t)
		var last int64
		for i, kind := range []string{"Pipeline", "Run", "Pipeline", "Job"} {
			r := mustCreate(t, db, database.Key{Kind: kind, Name: fmt.Sprintf("n%d", i)}, nil, "")
			if r.Revision <= last {
				t.Fatalf("write %d (%s) got revision %d after %d", i, kind, r.Revision, last)
			}
			last = r.Revision
		}
	})

	t.Run("paging returns each item once", func(t *testing.T) {
		db := newPlugin(t)
		want := map[string]bool{}
		for i := range 25 {
			ns := []string{"a", "b"}[i%2]
			name := fmt.Sprintf("item-%02d", i)
			mustCreate(t, db, database.Key{Kind: "Job", Namespace: ns, Name: name}, nil, "")
			want[ns+"/"+name] = true
		}
		mustCreate(t, db, database.Key{Kind: "Other", Namespace: "a", Name: "not-a-job"}, nil, "")
		seen := map[string]int{}
		var sizes []int
		var order []string
		token := ""
		for page := 0; ; page++ {
			if page > 10 {
				t.Fatalf("paging did not end after %d pages", page)
			}
			resp, err := db.List(ctx, &database.ListRequest{Kind: "Job", PageSize: 10, PageToken: token})
			if err != nil {
				t.Fatalf("List page %d: %v", page, err)
			}
			sizes = append(sizes, len(resp.Items))
			for _, r := range resp.Items {
				k := r.Key.Namespace + "/" + r.Key.Name
				seen[k]++
				order = append(order, k)
			}
			if resp.NextPageToken == "" {
				break
			}
			token = resp.NextPageToken
		}
		if len(seen) != 25 {
			t.Fatalf("paging returned %d distinct items, want 25 (page sizes %v)", len(seen), sizes)
		}
		for k, n := range seen {
			if !want[k] {
				t.Errorf("paging returned %s, which is not a Job that was created", k)
			}
			if n != 1 {
				t.Errorf("paging returned %s %d times", k, n)
			}
		}
		if !slices.IsSorted(order) {
			t.Errorf("List is not sorted by namespace and name: %v", order)
		}
		if fmt.Sprint(sizes) != "[10 10 5]" {
			t.Errorf("page sizes = %v, want [10 10 5]", sizes)
		}
		resp, err := db.List(ctx, &database.ListRequest{Kind: "Job", Namespace: "a"})
		if err != nil {
			t.Fatalf("List of one namespace: %v", err)
		}
		if len(resp.Items) != 13 {
			t.Fatalf("List of namespace a returned %d items, want 13", len(resp.Items))
		}
		for _, r := range resp.Items {
			if r.Key.Namespace != "a" {
				t.Fatalf("List of namespace a returned %v", r.Key)
			}
		}
		_, err = db.List(ctx, &database.ListRequest{Kind: "Job", PageToken: "not a token we gave"})
		assertInvalid(t, "List with a forged page token", err, "pageToken")
	})

	t.Run("label selectors match every label given", func(t *testing.T) {
		db := newPlugin(t)
		mustCreate(t, db, database.Key{Kind: "Run", Name: "r1"}, map[string]string{"pipeline": "web", "status": "ok"}, "")
		mustCreate(t, db, database.Key{Kind: "Run", Name: "r2"}, map[string]string{"pipeline": "web", "status": "failed"}, "")
		mustCreate(t, db, database.Key{Kind: "Run", Name: "r3"}, map[string]string{"pipeline": "api", "status": "ok"}, "")
		mustCreate(t, db, database.Key{Kind: "Run", Name: "r4"}, nil, "")
		for _, tc := range []struct {
			sel  map[string]string
			want string
		}{
			{map[string]string{"pipeline": "web"}, "[r1 r2]"},
			{map[string]string{"pipeline": "web", "status": "ok"}, "[r1]"},
			{map[string]string{"status": "ok"}, "[r1 r3]"},
			{map[string]string{"status": "missing"}, "[]"},
			{map[string]string{"other": ""}, "[]"},
			{nil, "[r1 r2 r3 r4]"},
		} {
			resp, err := db.List(ctx, &database.ListRequest{Kind: "Run", LabelSelector: tc.sel})
			if err != nil {
				t.Fatalf("List(%v): %v", tc.sel, err)
			}
			if got := fmt.Sprint(names(resp.Items)); got != tc.want {
				t.Errorf("List with selector %v = %s, want %s", tc.sel, got, tc.want)
			}
		}
		// A label removed by an update no longer matches.
		r1, err := db.Get(ctx, database.Key{Kind: "Run", Name: "r1"})
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		r1.Labels = map[string]string{"pipeline": "web"}
		if _, err := db.Update(ctx, r1); err != nil {
			t.Fatalf("Update: %v", err)
		}
		resp, err := db.List(ctx, &database.ListRequest{Kind: "Run", LabelSelector: map[string]string{"status": "ok"}})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if got := fmt.Sprint(names(resp.Items)); got != "[r3]" {
			t.Errorf("after removing a label, List(status=ok) = %s, want [r3]", got)
		}
	})

	t.Run("watch sees changes in order after a revision", func(t *testing.T) {
		db := newPlugin(t)
		before := mustCreate(t, db, database.Key{Kind: "Run", Namespace: "ns", Name: "before"}, nil, "")

		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		var events []database.Event
		errStop := errors.New("seen enough")
		done := make(chan error, 1)
		go func() {
			done <- db.Watch(wctx, &database.WatchRequest{Kind: "Run", Namespace: "ns", AfterRevision: before.Revision}, func(ev database.Event) error {
				events = append(events, ev)
				if len(events) == 3 {
					return errStop
				}
				return nil
			})
		}()

		key := database.Key{Kind: "Run", Namespace: "ns", Name: "watched"}
		created := mustCreate(t, db, key, map[string]string{"l": "1"}, "one")
		mustCreate(t, db, database.Key{Kind: "Pipeline", Namespace: "ns", Name: "other-kind"}, nil, "")
		mustCreate(t, db, database.Key{Kind: "Run", Namespace: "elsewhere", Name: "other-ns"}, nil, "")
		upd := *created
		upd.Data = []byte("two")
		updated, err := db.Update(ctx, &upd)
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
		if err := db.Delete(ctx, &database.DeleteRequest{Key: key}); err != nil {
			t.Fatalf("Delete: %v", err)
		}

		if err := <-done; !errors.Is(err, errStop) {
			t.Fatalf("Watch returned %v, want the error of its callback (events so far: %v)", err, events)
		}
		wantTypes := []database.EventType{database.EventCreated, database.EventUpdated, database.EventDeleted}
		for i, ev := range events {
			if ev.Type != wantTypes[i] || ev.Resource.Key != key {
				t.Fatalf("event %d = %v %v, want %v %v", i, ev.Type, ev.Resource.Key, wantTypes[i], key)
			}
			if i > 0 && ev.Resource.Revision <= events[i-1].Resource.Revision {
				t.Fatalf("event revisions do not increase: %d after %d", ev.Resource.Revision, events[i-1].Resource.Revision)
			}
		}
		if events[0].Resource.Revision != created.Revision || events[1].Resource.Revision != updated.Revision {
			t.Errorf("event revisions %d, %d, want %d, %d", events[0].Resource.Revision, events[1].Resource.Revision, created.Revision, updated.Revision)
		}
		if string(events[1].Resource.Data) != "two" {
			t.Errorf("update event carries data %q, want %q", events[1].Resource.Data, "two")
		}

		// A watch that starts later replays the same history.
		var replay []database.EventType
		err = db.Watch(wctx, &database.WatchRequest{Kind: "Run", AfterRevision: before.Revision}, func(ev database.Event) error {
			replay = append(replay, ev.Type)
			if len(replay) == 4 {
				return errStop
			}
			return nil
		})
		if !errors.Is(err, errStop) {
			t.Fatalf("replaying Watch returned %v", err)
		}
		// Every namespace: created(watched), created(other-ns), updated, deleted.
		if fmt.Sprint(replay) != "[created created updated deleted]" {
			t.Errorf("replay across namespaces = %v", replay)
		}
	})

	t.Run("watch after a list's revision misses nothing", func(t *testing.T) {
		db := newPlugin(t)
		a := mustCreate(t, db, database.Key{Kind: "Run", Name: "a"}, nil, "")
		mustCreate(t, db, database.Key{Kind: "Other", Name: "later-than-a"}, nil, "")
		list, err := db.List(ctx, &database.ListRequest{Kind: "Run"})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if list.Revision <= a.Revision {
			t.Fatalf("List revision = %d, want the database's revision (more than %d)", list.Revision, a.Revision)
		}
		b := mustCreate(t, db, database.Key{Kind: "Run", Name: "b"}, nil, "")
		var first database.Event
		errStop := errors.New("stop")
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		err = db.Watch(wctx, &database.WatchRequest{Kind: "Run", AfterRevision: list.Revision}, func(ev database.Event) error {
			first = ev
			return errStop
		})
		if !errors.Is(err, errStop) {
			t.Fatalf("Watch returned %v", err)
		}
		if first.Type != database.EventCreated || first.Resource.Key.Name != "b" || first.Resource.Revision != b.Revision {
			t.Fatalf("first event after the list = %v %v at %d, want the creation of b at %d", first.Type, first.Resource.Key, first.Resource.Revision, b.Revision)
		}
	})

	t.Run("watch ends with its context", func(t *testing.T) {
		db := newPlugin(t)
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- db.Watch(wctx, &database.WatchRequest{Kind: "Run"}, func(database.Event) error { return nil })
		}()
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Watch after cancel returned %v, want context.Canceled", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Watch did not return after its context was cancelled")
		}
	})

	t.Run("queue hands out, acks and is empty", func(t *testing.T) {
		db := newPlugin(t)
		if it, err := db.Lease(ctx, lease("jobs", time.Minute)); err != nil || it != nil {
			t.Fatalf("Lease of an empty queue = %+v, %v, want nil, nil", it, err)
		}
		payloads := map[string]string{}
		for i := range 3 {
			it, err := db.Enqueue(ctx, &database.EnqueueRequest{Queue: "jobs", Payload: fmt.Appendf(nil, "p%d", i)})
			if err != nil {
				t.Fatalf("Enqueue: %v", err)
			}
			if it.ID == "" {
				t.Fatalf("Enqueue without an ID returned an item without one")
			}
			payloads[it.ID] = fmt.Sprintf("p%d", i)
		}
		mustEnqueue(t, db, "other-queue", "x")
		for range 3 {
			it := mustLease(t, db, "jobs", time.Minute)
			if it.Attempts != 1 || it.LeaseToken == "" || it.Queue != "jobs" {
				t.Fatalf("first lease = %+v, want attempts 1, a token and queue jobs", it)
			}
			if string(it.Payload) != payloads[it.ID] {
				t.Fatalf("leased %s with payload %q, want %q", it.ID, it.Payload, payloads[it.ID])
			}
			delete(payloads, it.ID)
			if err := db.Ack(ctx, &database.AckRequest{ID: it.ID, LeaseToken: it.LeaseToken}); err != nil {
				t.Fatalf("Ack: %v", err)
			}
			if err := db.Ack(ctx, &database.AckRequest{ID: it.ID, LeaseToken: it.LeaseToken}); !errors.Is(err, sdk.ErrNotFound) {
				t.Fatalf("second Ack error = %v, want sdk.ErrNotFound", err)
			}
		}
		if it, err := db.Lease(ctx, lease("jobs", time.Minute)); err != nil || it != nil {
			t.Fatalf("Lease after acking everything = %+v, %v, want nil, nil", it, err)
		}
	})

	t.Run("enqueue with an id is idempotent", func(t *testing.T) {
		db := newPlugin(t)
		first, err := db.Enqueue(ctx, &database.EnqueueRequest{Queue: "jobs", ID: "run-1/build", Payload: []byte("a")})
		if err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
		second, err := db.Enqueue(ctx, &database.EnqueueRequest{Queue: "jobs", ID: "run-1/build", Payload: []byte("b")})
		if err != nil {
			t.Fatalf("second Enqueue of the same id: %v", err)
		}
		if first.ID != "run-1/build" || second.ID != first.ID || string(second.Payload) != "a" {
			t.Fatalf("Enqueue twice = %+v then %+v, want the first item twice", first, second)
		}
		it := mustLease(t, db, "jobs", time.Minute)
		if it.ID != "run-1/build" {
			t.Fatalf("leased %q", it.ID)
		}
		if again, err := db.Lease(ctx, lease("jobs", time.Minute)); err != nil || again != nil {
			t.Fatalf("an id enqueued twice was handed out twice: %+v, %v", again, err)
		}
	})

	t.Run("enqueue delay holds the item back", func(t *testing.T) {
		db := newPlugin(t)
		if _, err := db.Enqueue(ctx, &database.EnqueueRequest{Queue: "later", Delay: time.Hour}); err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
		if it, err := db.Lease(ctx, lease("later", time.Minute)); err != nil || it != nil {
			t.Fatalf("Lease handed out a delayed item: %+v, %v", it, err)
		}
	})

	t.Run("nack delays and counts the attempt", func(t *testing.T) {
		db := newPlugin(t)
		mustEnqueue(t, db, "jobs", "x")
		it := mustLease(t, db, "jobs", time.Minute)
		if err := db.Nack(ctx, &database.NackRequest{ID: it.ID, LeaseToken: it.LeaseToken, RetryAfter: time.Hour}); err != nil {
			t.Fatalf("Nack: %v", err)
		}
		if got, err := db.Lease(ctx, lease("jobs", time.Minute)); err != nil || got != nil {
			t.Fatalf("Lease after Nack with an hour's delay = %+v, %v, want nil", got, err)
		}

		mustEnqueue(t, db, "now", "y")
		it = mustLease(t, db, "now", time.Minute)
		if err := db.Nack(ctx, &database.NackRequest{ID: it.ID, LeaseToken: it.LeaseToken}); err != nil {
			t.Fatalf("Nack: %v", err)
		}
		again := mustLease(t, db, "now", time.Minute)
		if again.ID != it.ID || again.Attempts != 2 || again.LeaseToken == it.LeaseToken {
			t.Fatalf("after Nack without delay Lease = %+v, want %s with attempts 2 and a new token", again, it.ID)
		}
		if err := db.Ack(ctx, &database.AckRequest{ID: it.ID, LeaseToken: it.LeaseToken}); !isLeaseLost(err) {
			t.Fatalf("Ack with the token of the nacked lease error = %v, want sdk.ErrConflict or sdk.ErrFailedPrecondition", err)
		}
	})

	t.Run("an expired lease returns the item", func(t *testing.T) {
		db := newPlugin(t)
		mustEnqueue(t, db, "jobs", "x")
		first := mustLease(t, db, "jobs", 200*time.Millisecond)
		var second *database.QueueItem
		deadline := time.Now().Add(20 * time.Second)
		for second == nil {
			if time.Now().After(deadline) {
				t.Fatal("an item leased for 200ms was not handed out again within 20s")
			}
			time.Sleep(50 * time.Millisecond)
			var err error
			if second, err = db.Lease(ctx, lease("jobs", time.Minute)); err != nil {
				t.Fatalf("Lease: %v", err)
			}
		}
		if second.ID != first.ID || second.Attempts != 2 {
			t.Fatalf("re-leased %+v, want %s with attempts 2", second, first.ID)
		}
		if err := db.Ack(ctx, &database.AckRequest{ID: first.ID, LeaseToken: first.LeaseToken}); !isLeaseLost(err) {
			t.Fatalf("Ack with an expired, re-leased token error = %v, want sdk.ErrConflict or sdk.ErrFailedPrecondition", err)
		}
		if _, err := db.Renew(ctx, &database.RenewRequest{ID: first.ID, LeaseToken: first.LeaseToken, TTL: time.Hour}); !isLeaseLost(err) {
			t.Fatalf("Renew with an expired, re-leased token error = %v", err)
		}
		if err := db.Ack(ctx, &database.AckRequest{ID: second.ID, LeaseToken: second.LeaseToken}); err != nil {
			t.Fatalf("Ack by the current holder: %v", err)
		}
	})

	t.Run("renew extends the lease", func(t *testing.T) {
		db := newPlugin(t)
		mustEnqueue(t, db, "jobs", "x")
		it := mustLease(t, db, "jobs", 300*time.Millisecond)
		renewed, err := db.Renew(ctx, &database.RenewRequest{ID: it.ID, LeaseToken: it.LeaseToken, TTL: time.Hour})
		if err != nil {
			t.Fatalf("Renew: %v", err)
		}
		if !renewed.LeaseExpiresAt.After(it.LeaseExpiresAt) || renewed.LeaseToken != it.LeaseToken {
			t.Fatalf("Renew = %+v, want a later expiry than %v and the same token", renewed, it.LeaseExpiresAt)
		}
		time.Sleep(600 * time.Millisecond) // past the first TTL
		if got, err := db.Lease(ctx, lease("jobs", time.Minute)); err != nil || got != nil {
			t.Fatalf("a renewed lease was handed out again: %+v, %v", got, err)
		}
		if err := db.Ack(ctx, &database.AckRequest{ID: it.ID, LeaseToken: it.LeaseToken}); err != nil {
			t.Fatalf("Ack after Renew: %v", err)
		}
	})

	t.Run("a wrong lease token is refused", func(t *testing.T) {
		db := newPlugin(t)
		mustEnqueue(t, db, "jobs", "x")
		it := mustLease(t, db, "jobs", time.Minute)
		if err := db.Ack(ctx, &database.AckRequest{ID: it.ID, LeaseToken: "forged"}); !isLeaseLost(err) {
			t.Errorf("Ack with a wrong token error = %v", err)
		}
		if err := db.Nack(ctx, &database.NackRequest{ID: it.ID, LeaseToken: "forged"}); !isLeaseLost(err) {
			t.Errorf("Nack with a wrong token error = %v", err)
		}
		if _, err := db.Renew(ctx, &database.RenewRequest{ID: it.ID, LeaseToken: "forged", TTL: time.Minute}); !isLeaseLost(err) {
			t.Errorf("Renew with a wrong token error = %v", err)
		}
		if got, err := db.Lease(ctx, lease("jobs", time.Minute)); err != nil || got != nil {
			t.Fatalf("after refused calls the item was handed out again: %+v, %v", got, err)
		}
		if err := db.Ack(ctx, &database.AckRequest{ID: "no-such-item", LeaseToken: "t"}); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Ack of an unknown item error = %v, want sdk.ErrNotFound", err)
		}
	})

	t.Run("two leasers never hold the same item", func(t *testing.T) {
		db := newPlugin(t)
		const n = 40
		for i := range n {
			mustEnqueue(t, db, "jobs", fmt.Sprint(i))
		}
		var (
			mu     sync.Mutex
			held   = map[string]string{}
			handed = map[string]int{}
			wg     sync.WaitGroup
			fails  = make(chan string, 2*n)
		)
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				holder := fmt.Sprintf("worker-%d", w)
				// Lease until the queue is empty while holding everything
				// leased, so a Lease that hands out a held item is caught
				// whatever the interleaving; then ack.
				var mine []*database.QueueItem
				for {
					it, err := db.Lease(ctx, &database.LeaseRequest{Queue: "jobs", Holder: holder, TTL: time.Minute})
					if err != nil {
						fails <- fmt.Sprintf("%s: Lease: %v", holder, err)
						return
					}
					if it == nil {
						break
					}
					mu.Lock()
					if other, ok := held[it.ID]; ok {
						fails <- fmt.Sprintf("%s leased %s while %s held it", holder, it.ID, other)
					}
					held[it.ID] = holder
					handed[it.ID]++
					mu.Unlock()
					mine = append(mine, it)
					if len(mine) > n {
						fails <- fmt.Sprintf("%s leased more items than were queued", holder)
						return
					}
				}
				for _, it := range mine {
					if err := db.Ack(ctx, &database.AckRequest{ID: it.ID, LeaseToken: it.LeaseToken}); err != nil {
						fails <- fmt.Sprintf("%s: Ack %s: %v", holder, it.ID, err)
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
			t.Fatalf("%d distinct items were handed out, want %d", len(handed), n)
		}
		for id, k := range handed {
			if k != 1 {
				t.Errorf("item %s was handed out %d times", id, k)
			}
		}
	})

	t.Run("bad input names the field", func(t *testing.T) {
		db := newPlugin(t)
		_, err := db.Create(ctx, &database.Resource{Key: database.Key{Name: "x"}})
		assertInvalid(t, "Create with an empty kind", err, "key.kind")
		_, err = db.Create(ctx, &database.Resource{Key: database.Key{Kind: "Run"}})
		assertInvalid(t, "Create with an empty name", err, "key.name")
		_, err = db.Create(ctx, &database.Resource{Key: database.Key{Kind: "Run", Name: "bad\x00name"}})
		assertInvalid(t, "Create with a NUL in the name", err, "key.name")
		_, err = db.Create(ctx, &database.Resource{Key: database.Key{Kind: "Run", Name: "x"}, Labels: map[string]string{"": "v"}})
		assertInvalid(t, "Create with an empty label key", err, "labels")
		_, err = db.Update(ctx, &database.Resource{Key: database.Key{Kind: "Run"}, Revision: 1})
		assertInvalid(t, "Update with an empty name", err, "key.name")
		_, err = db.Get(ctx, database.Key{Name: "x"})
		assertInvalid(t, "Get with an empty kind", err, "key.kind")
		err = db.Delete(ctx, &database.DeleteRequest{Key: database.Key{Kind: "Run"}})
		assertInvalid(t, "Delete with an empty name", err, "key.name")
		_, err = db.List(ctx, &database.ListRequest{})
		assertInvalid(t, "List with an empty kind", err, "kind")
		_, err = db.List(ctx, &database.ListRequest{Kind: "Run", PageSize: -1})
		assertInvalid(t, "List with a negative page size", err, "pageSize")
		err = db.Watch(ctx, &database.WatchRequest{}, func(database.Event) error { return nil })
		assertInvalid(t, "Watch with an empty kind", err, "kind")
		_, err = db.Enqueue(ctx, &database.EnqueueRequest{})
		assertInvalid(t, "Enqueue with an empty queue", err, "queue")
		_, err = db.Lease(ctx, &database.LeaseRequest{Queue: "q", Holder: "w"})
		assertInvalid(t, "Lease without a TTL", err, "ttl")
		_, err = db.Lease(ctx, &database.LeaseRequest{Queue: "q", TTL: time.Minute})
		assertInvalid(t, "Lease without a holder", err, "holder")
		err = db.Ack(ctx, &database.AckRequest{ID: "x"})
		assertInvalid(t, "Ack without a token", err, "leaseToken")

		resp, err := db.List(ctx, &database.ListRequest{Kind: "Run"})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(resp.Items) != 0 {
			t.Fatalf("rejected writes left %d resources behind", len(resp.Items))
		}
		if it, err := db.Lease(ctx, lease("q", time.Minute)); err != nil || it != nil {
			t.Fatalf("rejected enqueues left an item behind: %+v, %v", it, err)
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		db := newPlugin(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		key := database.Key{Kind: "Run", Name: "late"}
		_, err := db.Create(cctx, &database.Resource{Key: key})
		assertCancelled(t, err)
		if _, err := db.Get(ctx, key); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("a cancelled Create stored the resource (Get error = %v)", err)
		}
		_, err = db.Enqueue(cctx, &database.EnqueueRequest{Queue: "q"})
		assertCancelled(t, err)
		if it, err := db.Lease(ctx, lease("q", time.Minute)); err != nil || it != nil {
			t.Fatalf("a cancelled Enqueue stored an item: %+v, %v", it, err)
		}
	})

	t.Run("batch applies every write or none", func(t *testing.T) {
		db := newPlugin(t)
		b, ok := db.(database.Batcher)
		if !ok {
			t.Skip("the plugin applies no batches (database.Batcher is optional)")
		}
		old := mustCreate(t, db, database.Key{Kind: "Pipeline", Namespace: "ns", Name: "p"}, nil, `{"last":1}`)
		gone := mustCreate(t, db, database.Key{Kind: "Run", Namespace: "ns", Name: "p-0"}, nil, `{}`)
		run := database.Key{Kind: "Run", Namespace: "ns", Name: "p-2"}
		results, err := b.Batch(ctx, []database.Op{
			{Update: &database.Resource{Key: old.Key, Revision: old.Revision, Data: []byte(`{"last":2}`)}},
			{Create: &database.Resource{Key: run, Labels: map[string]string{"pipeline": "p"}, Data: []byte(`{"status":"queued"}`)}},
			{Delete: &database.DeleteRequest{Key: gone.Key, ExpectedRevision: gone.Revision}},
			{Enqueue: &database.EnqueueRequest{Queue: "jobs", ID: "p-2/build", Payload: []byte("build")}},
		})
		if errors.Is(err, sdk.ErrUnimplemented) {
			t.Skip("the plugin applies no batches (it answers Batch with sdk.ErrUnimplemented)")
		}
		if err != nil {
			t.Fatalf("Batch: %v", err)
		}
		if len(results) != 4 {
			t.Fatalf("Batch returned %d results for 4 writes", len(results))
		}
		upd, crt, it := results[0].Resource, results[1].Resource, results[3].Item
		if upd == nil || crt == nil || it == nil || results[2].Resource != nil {
			t.Fatalf("Batch results = %+v; want the updated and created resources, nothing for the delete, the queued item", results)
		}
		if !(old.Revision < upd.Revision && upd.Revision < crt.Revision) {
			t.Errorf("revisions %d (before), %d (update), %d (create): each write of a batch takes the next revision in order", old.Revision, upd.Revision, crt.Revision)
		}
		if got, err := db.Get(ctx, run); err != nil || got.Revision != crt.Revision || string(got.Data) != `{"status":"queued"}` {
			t.Errorf("Get of the created resource = %+v, %v; want revision %d and its data", got, err, crt.Revision)
		}
		if got, err := db.Get(ctx, old.Key); err != nil || string(got.Data) != `{"last":2}` {
			t.Errorf("Get of the updated resource = %+v, %v; want the new data", got, err)
		}
		if _, err := db.Get(ctx, gone.Key); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Get of the deleted resource: error = %v, want sdk.ErrNotFound", err)
		}
		if got := mustLease(t, db, "jobs", time.Minute); got.ID != "p-2/build" || string(got.Payload) != "build" {
			t.Errorf("leased %+v, want the item the batch queued", got)
		}

		// A batch whose second write fails keeps nothing of the first and
		// the third, and says which write failed.
		fresh := database.Key{Kind: "Run", Namespace: "ns", Name: "p-3"}
		_, err = b.Batch(ctx, []database.Op{
			{Create: &database.Resource{Key: fresh, Data: []byte(`{}`)}},
			{Update: &database.Resource{Key: old.Key, Revision: old.Revision, Data: []byte(`{"last":3}`)}},
			{Enqueue: &database.EnqueueRequest{Queue: "jobs", ID: "p-3/build"}},
		})
		var be *database.BatchError
		if !errors.Is(err, sdk.ErrConflict) || !errors.As(err, &be) || be.Index != 1 {
			t.Fatalf("a batch with a stale update: error = %v, want sdk.ErrConflict in a *database.BatchError for write 1", err)
		}
		if _, err := db.Get(ctx, fresh); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("the create before the failed write was kept (Get error = %v)", err)
		}
		if it, err := db.Lease(ctx, lease("jobs", time.Minute)); err != nil || it != nil {
			t.Errorf("the enqueue after the failed write was kept: %+v, %v", it, err)
		}
		_, err = b.Batch(ctx, []database.Op{{Create: &database.Resource{Key: run, Data: []byte(`{}`)}}})
		if !errors.Is(err, sdk.ErrAlreadyExists) || !errors.As(err, &be) || be.Index != 0 {
			t.Errorf("a batch creating an existing key: error = %v, want sdk.ErrAlreadyExists for write 0", err)
		}
	})

	t.Run("batch acks a leased item with its writes, or neither", func(t *testing.T) {
		db := newPlugin(t)
		b, ok := db.(database.Batcher)
		if !ok {
			t.Skip("the plugin applies no batches (database.Batcher is optional)")
		}
		job := mustCreate(t, db, database.Key{Kind: "Job", Namespace: "ns", Name: "r-1.build"}, nil, `{"status":"running"}`)
		if _, err := db.Enqueue(ctx, &database.EnqueueRequest{Queue: "jobs", ID: "r-1/build"}); err != nil {
			t.Fatal(err)
		}
		it := mustLease(t, db, "jobs", time.Minute)
		// A stale lease token fails the batch: the job's write is not kept
		// and the item is still leased.
		_, err := b.Batch(ctx, []database.Op{
			{Update: &database.Resource{Key: job.Key, Revision: job.Revision, Data: []byte(`{"status":"success"}`)}},
			{Ack: &database.AckRequest{ID: it.ID, LeaseToken: "not-the-token"}},
		})
		var be *database.BatchError
		if err == nil || !errors.As(err, &be) || be.Index != 1 {
			if errors.Is(err, sdk.ErrUnimplemented) {
				t.Skip("the plugin applies no batches (it answers Batch with sdk.ErrUnimplemented)")
			}
			t.Fatalf("a batch acking with another lease token: error = %v, want a *database.BatchError for write 1", err)
		}
		if got, err := db.Get(ctx, job.Key); err != nil || string(got.Data) != `{"status":"running"}` {
			t.Fatalf("the write before the failed ack was kept: %+v, %v", got, err)
		}
		if _, err := db.Renew(ctx, &database.RenewRequest{ID: it.ID, LeaseToken: it.LeaseToken, TTL: time.Minute}); err != nil {
			t.Fatalf("the item is no longer leased after a failed batch: %v", err)
		}
		results, err := b.Batch(ctx, []database.Op{
			{Update: &database.Resource{Key: job.Key, Revision: job.Revision, Data: []byte(`{"status":"success"}`)}},
			{Ack: &database.AckRequest{ID: it.ID, LeaseToken: it.LeaseToken}},
		})
		if err != nil || len(results) != 2 || results[0].Resource == nil || results[1].Resource != nil || results[1].Item != nil {
			t.Fatalf("Batch(update, ack) = %+v, %v; want the updated resource, then nothing for the ack", results, err)
		}
		if got, err := db.Get(ctx, job.Key); err != nil || string(got.Data) != `{"status":"success"}` {
			t.Fatalf("the job's write: %+v, %v", got, err)
		}
		if err := db.Ack(ctx, &database.AckRequest{ID: it.ID, LeaseToken: it.LeaseToken}); err == nil {
			t.Fatal("the item could be acked again after the batch acked it")
		}
		if got, err := db.Lease(ctx, lease("jobs", time.Minute)); err != nil || got != nil {
			t.Fatalf("the acked item is leased again: %+v, %v", got, err)
		}
	})

	t.Run("batch is seen by watchers write by write", func(t *testing.T) {
		db := newPlugin(t)
		b, ok := db.(database.Batcher)
		if !ok {
			t.Skip("the plugin applies no batches (database.Batcher is optional)")
		}
		start := mustCreate(t, db, database.Key{Kind: "Run", Namespace: "ns", Name: "r-0"}, nil, `{}`)
		_, err := b.Batch(ctx, []database.Op{
			{Create: &database.Resource{Key: database.Key{Kind: "Run", Namespace: "ns", Name: "r-1"}, Data: []byte(`{}`)}},
			{Update: &database.Resource{Key: start.Key, Revision: start.Revision, Data: []byte(`{"n":1}`)}},
		})
		if errors.Is(err, sdk.ErrUnimplemented) {
			t.Skip("the plugin applies no batches (it answers Batch with sdk.ErrUnimplemented)")
		}
		if err != nil {
			t.Fatalf("Batch: %v", err)
		}
		errStopWatch := errors.New("seen enough")
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var seen []string
		_ = db.Watch(wctx, &database.WatchRequest{Kind: "Run", AfterRevision: start.Revision}, func(ev database.Event) error {
			seen = append(seen, ev.Type.String()+" "+ev.Resource.Key.Name)
			if len(seen) == 2 {
				return errStopWatch
			}
			return nil
		})
		if want := []string{database.EventCreated.String() + " r-1", database.EventUpdated.String() + " r-0"}; !slices.Equal(seen, want) {
			t.Errorf("watch after a batch saw %q, want %q", seen, want)
		}
	})

	t.Run("a batch needs one write per op", func(t *testing.T) {
		db := newPlugin(t)
		b, ok := db.(database.Batcher)
		if !ok {
			t.Skip("the plugin applies no batches (database.Batcher is optional)")
		}
		for name, ops := range map[string][]database.Op{
			"no op":         nil,
			"an op of two":  {{Create: &database.Resource{Key: database.Key{Kind: "Run", Name: "a"}}, Enqueue: &database.EnqueueRequest{Queue: "q"}}},
			"an op of none": {{}},
		} {
			_, err := b.Batch(ctx, ops)
			if errors.Is(err, sdk.ErrUnimplemented) {
				t.Skip("the plugin applies no batches (it answers Batch with sdk.ErrUnimplemented)")
			}
			if !errors.Is(err, sdk.ErrInvalidArgument) {
				t.Errorf("%s: error = %v, want sdk.ErrInvalidArgument", name, err)
			}
		}
	})
}

// DatabaseOpener opens a database plugin over the data kept in dir, and
// returns it with a function that stops it. A test of an implementation
// in-process closes it; a test of a real plugin process kills it with
// SIGKILL, so that only what was committed can survive.
type DatabaseOpener func(t *testing.T, dir string) (db database.Database, stop func())

// DatabaseDurability checks that committed writes survive stopping a
// database and opening it again over the same data: resources, deletions,
// revisions (which keep increasing), the change history Watch replays, and
// the queue with its leases.
func DatabaseDurability(t *testing.T, open DatabaseOpener) {
	ctx := context.Background()
	dir := t.TempDir()

	db, stop := open(t, dir)
	a := mustCreate(t, db, database.Key{Kind: "Run", Namespace: "ns", Name: "a"}, map[string]string{"k": "v"}, "a1")
	b := mustCreate(t, db, database.Key{Kind: "Run", Namespace: "ns", Name: "b"}, nil, "b1")
	upd := *a
	upd.Data = []byte("a2")
	a2, err := db.Update(ctx, &upd)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if err := db.Delete(ctx, &database.DeleteRequest{Key: b.Key}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	ids := make([]string, 3)
	for i := range ids {
		it, err := db.Enqueue(ctx, &database.EnqueueRequest{Queue: "jobs", ID: fmt.Sprintf("item-%d", i), Payload: []byte{byte(i)}})
		if err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
		ids[i] = it.ID
	}
	held := mustLease(t, db, "jobs", time.Hour)
	done := mustLease(t, db, "jobs", time.Hour)
	if err := db.Ack(ctx, &database.AckRequest{ID: done.ID, LeaseToken: done.LeaseToken}); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	stop()

	db, stop = open(t, dir)
	defer stop()
	got, err := db.Get(ctx, a.Key)
	if err != nil {
		t.Fatalf("Get after reopening: %v", err)
	}
	if got.Revision != a2.Revision || string(got.Data) != "a2" || got.Labels["k"] != "v" {
		t.Fatalf("after reopening Get = %+v, want revision %d and data a2", got, a2.Revision)
	}
	if _, err := db.Get(ctx, b.Key); !errors.Is(err, sdk.ErrNotFound) {
		t.Fatalf("a deleted resource came back after reopening (Get error = %v)", err)
	}
	c := mustCreate(t, db, database.Key{Kind: "Run", Namespace: "ns", Name: "c"}, nil, "")
	if c.Revision <= a2.Revision+1 { // the deletion of b took a2.Revision+1 at least
		t.Fatalf("after reopening a new write got revision %d, want greater than %d", c.Revision, a2.Revision+1)
	}

	var history []string
	errStop := errors.New("enough")
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = db.Watch(wctx, &database.WatchRequest{Kind: "Run"}, func(ev database.Event) error {
		history = append(history, ev.Type.String()+" "+ev.Resource.Key.Name)
		if len(history) == 5 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("Watch after reopening returned %v with %v", err, history)
	}
	if want := "[created a created b updated a deleted b created c]"; fmt.Sprint(history) != want {
		t.Fatalf("history after reopening = %v, want %s", history, want)
	}

	left := mustLease(t, db, "jobs", time.Minute)
	if left.ID == held.ID || left.ID == done.ID {
		t.Fatalf("after reopening Lease handed out %s; %s is still leased and %s was acked", left.ID, held.ID, done.ID)
	}
	if it, err := db.Lease(ctx, lease("jobs", time.Minute)); err != nil || it != nil {
		t.Fatalf("after reopening a second Lease = %+v, %v, want nil (one item held, one acked)", it, err)
	}
	if err := db.Ack(ctx, &database.AckRequest{ID: held.ID, LeaseToken: held.LeaseToken}); err != nil {
		t.Fatalf("the lease taken before reopening was lost: %v", err)
	}
}

func isLeaseLost(err error) bool {
	return errors.Is(err, sdk.ErrConflict) || errors.Is(err, sdk.ErrFailedPrecondition)
}

func lease(queue string, ttl time.Duration) *database.LeaseRequest {
	return &database.LeaseRequest{Queue: queue, Holder: "sdktest", TTL: ttl}
}

func mustCreate(t *testing.T, db database.Database, key database.Key, labels map[string]string, data string) *database.Resource {
	t.Helper()
	r, err := db.Create(context.Background(), &database.Resource{Key: key, Labels: labels, Data: []byte(data)})
	if err != nil {
		t.Fatalf("Create(%v): %v", key, err)
	}
	return r
}

func mustEnqueue(t *testing.T, db database.Database, queue, payload string) *database.QueueItem {
	t.Helper()
	it, err := db.Enqueue(context.Background(), &database.EnqueueRequest{Queue: queue, Payload: []byte(payload)})
	if err != nil {
		t.Fatalf("Enqueue(%s): %v", queue, err)
	}
	return it
}

func mustLease(t *testing.T, db database.Database, queue string, ttl time.Duration) *database.QueueItem {
	t.Helper()
	it, err := db.Lease(context.Background(), lease(queue, ttl))
	if err != nil {
		t.Fatalf("Lease(%s): %v", queue, err)
	}
	if it == nil {
		t.Fatalf("Lease(%s) found no item", queue)
	}
	return it
}

func names(rs []database.Resource) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.Key.Name)
	}
	return out
}
