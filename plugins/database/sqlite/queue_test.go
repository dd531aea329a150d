package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

func leaseOne(t *testing.T, st *store, queue string, ttl time.Duration) *database.QueueItem {
	t.Helper()
	it, err := st.lease(context.Background(), &database.LeaseRequest{Queue: queue, Holder: "test", TTL: ttl})
	if err != nil {
		t.Fatalf("lease: %v", err)
	}
	return it
}

func TestItemsAreHandedOutInTheOrderTheyBecomeAvailable(t *testing.T) {
	st, clk := testStore(t)
	ctx := context.Background()
	for _, id := range []string{"first", "second", "third"} {
		if _, err := st.enqueue(ctx, &database.EnqueueRequest{Queue: "q", ID: id}); err != nil {
			t.Fatal(err)
		}
		clk.advance(time.Millisecond)
	}
	if _, err := st.enqueue(ctx, &database.EnqueueRequest{Queue: "q", ID: "delayed", Delay: time.Hour}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		it := leaseOne(t, st, "q", time.Minute)
		if it == nil {
			break
		}
		got = append(got, it.ID)
	}
	if len(got) != 3 || got[0] != "first" || got[1] != "second" || got[2] != "third" {
		t.Fatalf("lease order = %v, want [first second third] and the delayed item held back", got)
	}
}

func TestAnExpiredLeaseIsHandedOutAgain(t *testing.T) {
	st, clk := testStore(t)
	ctx := context.Background()
	if _, err := st.enqueue(ctx, &database.EnqueueRequest{Queue: "q", ID: "x"}); err != nil {
		t.Fatal(err)
	}
	first := leaseOne(t, st, "q", time.Minute)
	clk.advance(59 * time.Second)
	if it := leaseOne(t, st, "q", time.Minute); it != nil {
		t.Fatalf("an item was handed out before its lease expired: %+v", it)
	}
	clk.advance(2 * time.Second)
	second := leaseOne(t, st, "q", time.Minute)
	if second == nil || second.Attempts != 2 || second.LeaseToken == first.LeaseToken {
		t.Fatalf("after expiry lease = %+v, want attempt 2 with a new token", second)
	}
}

func TestAnExpiredLeaseNobodyTookCanStillBeAcked(t *testing.T) {
	st, clk := testStore(t)
	ctx := context.Background()
	if _, err := st.enqueue(ctx, &database.EnqueueRequest{Queue: "q", ID: "x"}); err != nil {
		t.Fatal(err)
	}
	it := leaseOne(t, st, "q", time.Minute)
	clk.advance(time.Hour)
	if _, err := st.renew(ctx, &database.RenewRequest{ID: it.ID, LeaseToken: it.LeaseToken, TTL: time.Minute}); err != nil {
		t.Fatalf("renew of an expired lease nobody took: %v", err)
	}
	if other := leaseOne(t, st, "q", time.Minute); other != nil {
		t.Fatalf("a renewed lease was handed out: %+v", other)
	}
	if err := st.ack(ctx, &database.AckRequest{ID: it.ID, LeaseToken: it.LeaseToken}); err != nil {
		t.Fatalf("ack: %v", err)
	}
}

func TestNackWaitsForRetryAfter(t *testing.T) {
	st, clk := testStore(t)
	ctx := context.Background()
	if _, err := st.enqueue(ctx, &database.EnqueueRequest{Queue: "q", ID: "x"}); err != nil {
		t.Fatal(err)
	}
	it := leaseOne(t, st, "q", time.Minute)
	if err := st.nack(ctx, &database.NackRequest{ID: it.ID, LeaseToken: it.LeaseToken, RetryAfter: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	clk.advance(9 * time.Second)
	if got := leaseOne(t, st, "q", time.Minute); got != nil {
		t.Fatalf("handed out before retry_after: %+v", got)
	}
	clk.advance(2 * time.Second)
	if got := leaseOne(t, st, "q", time.Minute); got == nil || got.Attempts != 2 {
		t.Fatalf("after retry_after lease = %+v, want the item with attempt 2", got)
	}
}

func TestEnqueueOfAnIDInAnotherQueueIsRefused(t *testing.T) {
	st, _ := testStore(t)
	ctx := context.Background()
	if _, err := st.enqueue(ctx, &database.EnqueueRequest{Queue: "a", ID: "x"}); err != nil {
		t.Fatal(err)
	}
	_, err := st.enqueue(ctx, &database.EnqueueRequest{Queue: "b", ID: "x"})
	var typed *sdk.Error
	if !errors.Is(err, sdk.ErrAlreadyExists) || !errors.As(err, &typed) || typed.Field != "id" {
		t.Fatalf("enqueue of x into another queue error = %v, want sdk.ErrAlreadyExists about id", err)
	}
}

func TestEnqueueOfALeasedIDDoesNotRevealTheLease(t *testing.T) {
	st, _ := testStore(t)
	ctx := context.Background()
	if _, err := st.enqueue(ctx, &database.EnqueueRequest{Queue: "q", ID: "x"}); err != nil {
		t.Fatal(err)
	}
	leaseOne(t, st, "q", time.Minute)
	again, err := st.enqueue(ctx, &database.EnqueueRequest{Queue: "q", ID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if again.LeaseToken != "" {
		t.Fatal("Enqueue of a leased id returned its lease token")
	}
}
