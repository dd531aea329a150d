package database

import (
	"fmt"
	"testing"
	"time"
)

func TestResourceRoundTrip(t *testing.T) {
	in := Resource{
		Key: Key{Kind: "Run", Namespace: "n", Name: "r"}, Revision: 7,
		Labels: map[string]string{"a": "b"}, Data: []byte("{}"),
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), UpdatedAt: time.Date(2026, 1, 2, 3, 4, 5, 7, time.UTC),
	}
	out := resourceFromProto(resourceToProto(&in))
	if fmt.Sprint(out) != fmt.Sprint(in) {
		t.Fatalf("round trip = %+v, want %+v", out, in)
	}
	if zero := resourceFromProto(resourceToProto(&Resource{})); !zero.CreatedAt.IsZero() || !zero.UpdatedAt.IsZero() {
		t.Fatalf("zero times came back as %v, %v", zero.CreatedAt, zero.UpdatedAt)
	}
}

func TestQueueItemRoundTrip(t *testing.T) {
	in := QueueItem{ID: "i", Queue: "q", Payload: []byte{1}, Attempts: 3, LeaseToken: "t",
		LeaseExpiresAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), EnqueuedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	out := itemFromProto(itemToProto(&in))
	if fmt.Sprint(*out) != fmt.Sprint(in) {
		t.Fatalf("round trip = %+v, want %+v", *out, in)
	}
	if d := durationFromProto(durationToProto(1500 * time.Millisecond)); d != 1500*time.Millisecond {
		t.Fatalf("duration round trip = %v", d)
	}
}
