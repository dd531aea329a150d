package database

import (
	"errors"
	"strings"
	"testing"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

func field(err error) string {
	var typed *sdk.Error
	if errors.As(err, &typed) && errors.Is(err, sdk.ErrInvalidArgument) {
		return typed.Field
	}
	return ""
}

func TestValidation(t *testing.T) {
	for _, tc := range []struct {
		what  string
		err   error
		field string
	}{
		{"key without kind", Key{Name: "x"}.Validate(), "key.kind"},
		{"key without name", Key{Kind: "Run"}.Validate(), "key.name"},
		{"long name", Key{Kind: "Run", Name: strings.Repeat("n", MaxNameLength+1)}.Validate(), "key.name"},
		{"control char in namespace", Key{Kind: "Run", Namespace: "a\tb", Name: "x"}.Validate(), "key.namespace"},
		{"nil resource", (*Resource)(nil).Validate(), "resource"},
		{"empty label key", (&Resource{Key: Key{Kind: "K", Name: "n"}, Labels: map[string]string{"": "v"}}).Validate(), "labels"},
		{"watch without kind", (&WatchRequest{}).Validate(), "kind"},
		{"negative revision", (&WatchRequest{Kind: "K", AfterRevision: -1}).Validate(), "afterRevision"},
		{"negative delay", (&EnqueueRequest{Queue: "q", Delay: -time.Second}).Validate(), "delay"},
		{"lease without ttl", (&LeaseRequest{Queue: "q", Holder: "h"}).Validate(), "ttl"},
		{"renew without token", (&RenewRequest{ID: "i", TTL: time.Second}).Validate(), "leaseToken"},
		{"nack with negative delay", (&NackRequest{ID: "i", LeaseToken: "t", RetryAfter: -1}).Validate(), "retryAfter"},
	} {
		if got := field(tc.err); got != tc.field {
			t.Errorf("%s: error %v, want sdk.ErrInvalidArgument about %s", tc.what, tc.err, tc.field)
		}
	}
	if err := (Key{Kind: "Run", Name: "x"}).Validate(); err != nil {
		t.Errorf("a key without namespace is valid, got %v", err)
	}
}

func TestListPageSize(t *testing.T) {
	for _, tc := range []struct{ in, want int }{{0, DefaultPageSize}, {10, 10}, {MaxPageSize + 1, MaxPageSize}} {
		got, err := (&ListRequest{Kind: "K", PageSize: tc.in}).Validate()
		if err != nil || got != tc.want {
			t.Errorf("page size %d -> %d, %v, want %d", tc.in, got, err, tc.want)
		}
	}
}
