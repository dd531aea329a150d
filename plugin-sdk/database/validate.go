package database

import (
	"fmt"
	"strings"
	"unicode/utf8"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

// Limits every implementation enforces, so that what one database accepts
// the others accept too.
const (
	// MaxNameLength is the longest kind, namespace, name, queue, holder,
	// item ID or label key, in bytes.
	MaxNameLength = 253
	// MaxPageSize is the largest page List returns.
	MaxPageSize = 1000
	// DefaultPageSize is the page size used when a ListRequest gives none.
	DefaultPageSize = 100
)

// ValidateName checks one identifier (kind, name, queue...): it must be
// set, valid UTF-8, at most MaxNameLength bytes and free of control
// characters. field names it in the error.
func ValidateName(field, v string) error {
	if v == "" {
		return sdk.Errorf(sdk.ErrInvalidArgument, field, "must not be empty")
	}
	return validateOptionalName(field, v)
}

func validateOptionalName(field, v string) error {
	if len(v) > MaxNameLength {
		return sdk.Errorf(sdk.ErrInvalidArgument, field, "is %d bytes long, the limit is %d", len(v), MaxNameLength)
	}
	if !utf8.ValidString(v) {
		return sdk.Errorf(sdk.ErrInvalidArgument, field, "is not valid UTF-8")
	}
	if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return sdk.Errorf(sdk.ErrInvalidArgument, field, "contains a control character")
	}
	return nil
}

// Validate checks a key: kind and name are required, namespace optional.
// Errors name the field as "key.kind", "key.namespace" or "key.name".
func (k Key) Validate() error {
	if err := ValidateName("key.kind", k.Kind); err != nil {
		return err
	}
	if err := validateOptionalName("key.namespace", k.Namespace); err != nil {
		return err
	}
	return ValidateName("key.name", k.Name)
}

// ValidateLabels checks label keys and values.
func ValidateLabels(field string, labels map[string]string) error {
	for k, v := range labels {
		if err := ValidateName(field, k); err != nil {
			return err
		}
		if !utf8.ValidString(v) {
			return sdk.Errorf(sdk.ErrInvalidArgument, field, "the value of label %q is not valid UTF-8", k)
		}
	}
	return nil
}

// Validate checks a resource given to Create or Update.
func (r *Resource) Validate() error {
	if r == nil {
		return sdk.Errorf(sdk.ErrInvalidArgument, "resource", "is required")
	}
	if err := r.Key.Validate(); err != nil {
		return err
	}
	return ValidateLabels("labels", r.Labels)
}

// Validate checks a list request and returns the page size to use.
func (r *ListRequest) Validate() (pageSize int, err error) {
	if err := ValidateName("kind", r.Kind); err != nil {
		return 0, err
	}
	if err := validateOptionalName("namespace", r.Namespace); err != nil {
		return 0, err
	}
	if err := ValidateLabels("labelSelector", r.LabelSelector); err != nil {
		return 0, err
	}
	switch {
	case r.PageSize < 0:
		return 0, sdk.Errorf(sdk.ErrInvalidArgument, "pageSize", "must not be negative")
	case r.PageSize == 0:
		return DefaultPageSize, nil
	case r.PageSize > MaxPageSize:
		return MaxPageSize, nil
	}
	return r.PageSize, nil
}

// Validate checks a watch request.
func (r *WatchRequest) Validate() error {
	if err := ValidateName("kind", r.Kind); err != nil {
		return err
	}
	if err := validateOptionalName("namespace", r.Namespace); err != nil {
		return err
	}
	if r.AfterRevision < 0 {
		return sdk.Errorf(sdk.ErrInvalidArgument, "afterRevision", "must not be negative")
	}
	return nil
}

// Validate checks an enqueue request.
func (r *EnqueueRequest) Validate() error {
	if err := ValidateName("queue", r.Queue); err != nil {
		return err
	}
	if r.ID != "" {
		if err := ValidateName("id", r.ID); err != nil {
			return err
		}
	}
	if r.Delay < 0 {
		return sdk.Errorf(sdk.ErrInvalidArgument, "delay", "must not be negative")
	}
	return nil
}

// Validate checks a lease request.
func (r *LeaseRequest) Validate() error {
	if err := ValidateName("queue", r.Queue); err != nil {
		return err
	}
	if err := ValidateName("holder", r.Holder); err != nil {
		return err
	}
	if r.TTL <= 0 {
		return sdk.Errorf(sdk.ErrInvalidArgument, "ttl", "must be positive")
	}
	return nil
}

func validateLease(id, token string) error {
	if err := ValidateName("id", id); err != nil {
		return err
	}
	if token == "" {
		return sdk.Errorf(sdk.ErrInvalidArgument, "leaseToken", "must not be empty")
	}
	return nil
}

// Validate checks a renew request.
func (r *RenewRequest) Validate() error {
	if err := validateLease(r.ID, r.LeaseToken); err != nil {
		return err
	}
	if r.TTL <= 0 {
		return sdk.Errorf(sdk.ErrInvalidArgument, "ttl", "must be positive")
	}
	return nil
}

// Validate checks an ack request.
func (r *AckRequest) Validate() error { return validateLease(r.ID, r.LeaseToken) }

// Validate checks a nack request.
func (r *NackRequest) Validate() error {
	if err := validateLease(r.ID, r.LeaseToken); err != nil {
		return err
	}
	if r.RetryAfter < 0 {
		return sdk.Errorf(sdk.ErrInvalidArgument, "retryAfter", "must not be negative")
	}
	return nil
}

// MaxBatchOps is the most writes one Batch takes.
const MaxBatchOps = 1000

// ValidateBatch checks that a batch has 1 to MaxBatchOps ops, each with
// exactly one write set; each write is validated when it is applied.
func ValidateBatch(ops []Op) error {
	if len(ops) == 0 || len(ops) > MaxBatchOps {
		return sdk.Errorf(sdk.ErrInvalidArgument, "ops", "has %d writes; a batch takes 1 to %d", len(ops), MaxBatchOps)
	}
	for i, op := range ops {
		n := 0
		for _, set := range []bool{op.Create != nil, op.Update != nil, op.Delete != nil, op.Enqueue != nil, op.Ack != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return sdk.Errorf(sdk.ErrInvalidArgument, fmt.Sprintf("ops[%d]", i), "sets %d writes; an op sets exactly one of create, update, delete, enqueue and ack", n)
		}
	}
	return nil
}
