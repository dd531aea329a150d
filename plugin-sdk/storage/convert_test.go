package storage

import (
	"testing"
	"time"
)

func TestInfoRoundTrip(t *testing.T) {
	in := &ObjectInfo{
		Ref:    ObjectRef{Scope: Scope{Kind: ScopeJob, Namespace: "n", Pipeline: "p", Run: "r", Job: "j"}, Key: "k/v"},
		Size:   42,
		SHA256: "abc",
		// Nanoseconds survive the wire.
		ModifiedAt: time.Date(2026, 3, 4, 5, 6, 7, 89, time.UTC),
	}
	out := infoFromProto(infoToProto(in))
	if *out != *in {
		t.Fatalf("round trip = %+v, want %+v", out, in)
	}
	zero := infoFromProto(infoToProto(&ObjectInfo{}))
	if !zero.ModifiedAt.IsZero() {
		t.Fatalf("a zero time came back as %v", zero.ModifiedAt)
	}
}
