package sdk

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/palvella/palvella/plugin-sdk/types"
	pluginv1 "github.com/palvella/palvella/proto/palvella/plugin/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors. A plugin returns them (wrapped or through [Errorf]); the
// core receives an error for which errors.Is answers true with the same
// sentinel, across the wire.
var (
	ErrInvalidArgument    = types.ErrInvalidArgument
	ErrNotFound           = types.ErrNotFound
	ErrAlreadyExists      = types.ErrAlreadyExists
	ErrConflict           = types.ErrConflict
	ErrFailedPrecondition = types.ErrFailedPrecondition
	ErrPermissionDenied   = types.ErrPermissionDenied
	ErrUnauthenticated    = types.ErrUnauthenticated
	ErrUnimplemented      = types.ErrUnimplemented
	ErrResourceExhausted  = types.ErrResourceExhausted
	// ErrPluginStopped is returned for calls that were in flight when the
	// plugin process stopped, and for calls made while it is down.
	ErrPluginStopped = types.ErrPluginStopped
	ErrInternal      = types.ErrInternal
)

// errorKinds ties each sentinel to its wire reason and gRPC code.
var errorKinds = []struct {
	err    error
	reason string
	code   codes.Code
}{
	{ErrInvalidArgument, "invalid_argument", codes.InvalidArgument},
	{ErrNotFound, "not_found", codes.NotFound},
	{ErrAlreadyExists, "already_exists", codes.AlreadyExists},
	{ErrConflict, "conflict", codes.Aborted},
	{ErrFailedPrecondition, "failed_precondition", codes.FailedPrecondition},
	{ErrPermissionDenied, "permission_denied", codes.PermissionDenied},
	{ErrUnauthenticated, "unauthenticated", codes.Unauthenticated},
	{ErrUnimplemented, "unimplemented", codes.Unimplemented},
	{ErrResourceExhausted, "resource_exhausted", codes.ResourceExhausted},
	{ErrPluginStopped, "plugin_stopped", codes.Unavailable},
	{ErrInternal, "internal", codes.Internal},
}

// Error is a typed error that keeps its kind and the field it is about
// across the wire.
type Error struct {
	// Kind is one of the sentinel errors of this package.
	Kind error
	// Field names the input field the error is about, such as "spec.key".
	Field string
	// Message says what was wrong, for a person.
	Message string
	// Metadata carries extra machine-readable facts.
	Metadata map[string]string
}

// Errorf returns an *Error of the given kind about field (which may be
// empty).
func Errorf(kind error, field, format string, args ...any) *Error {
	return &Error{Kind: kind, Field: field, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" && e.Kind != nil {
		msg = e.Kind.Error()
	}
	if e.Field != "" && !strings.Contains(msg, e.Field) {
		return e.Field + ": " + msg
	}
	return msg
}

// Unwrap returns the error's kind, so errors.Is(err, ErrNotFound) works.
func (e *Error) Unwrap() error { return e.Kind }

// GRPCStatus lets gRPC send the error as a status with an ErrorDetail.
func (e *Error) GRPCStatus() *status.Status {
	code, reason := codes.Unknown, ""
	for _, k := range errorKinds {
		if errors.Is(e.Kind, k.err) {
			code, reason = k.code, k.reason
			break
		}
	}
	st := status.New(code, e.Error())
	if withDetail, err := st.WithDetails(&pluginv1.ErrorDetail{Reason: reason, Field: e.Field, Metadata: e.Metadata}); err == nil {
		return withDetail
	}
	return st
}

// ToGRPC converts an error returned by a plugin's implementation into the
// error a gRPC handler returns. The category shims call it; plugin authors
// do not need to.
func ToGRPC(err error) error {
	if err == nil {
		return nil
	}
	var typed *Error
	if errors.As(err, &typed) {
		cp := *typed
		cp.Message = err.Error() // keeps the context the plugin wrapped it in
		return cp.GRPCStatus().Err()
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, err.Error())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	for _, k := range errorKinds {
		if errors.Is(err, k.err) {
			return (&Error{Kind: k.err, Message: err.Error()}).GRPCStatus().Err()
		}
	}
	return status.Error(codes.Unknown, err.Error())
}

// FromGRPC converts an error received from a gRPC call back into the SDK's
// errors: a status carrying an ErrorDetail becomes an *Error of the same
// kind; Canceled and DeadlineExceeded become the context errors; an
// Unavailable transport error becomes ErrPluginStopped.
func FromGRPC(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range st.Details() {
		detail, ok := d.(*pluginv1.ErrorDetail)
		if !ok {
			continue
		}
		out := &Error{Kind: ErrInternal, Field: detail.GetField(), Message: st.Message(), Metadata: maps.Clone(detail.GetMetadata())}
		for _, k := range errorKinds {
			if k.reason == detail.GetReason() {
				out.Kind = k.err
				break
			}
		}
		if detail.GetReason() == "" {
			out.Kind = nil
		}
		return out
	}
	switch st.Code() {
	case codes.Canceled:
		return fmt.Errorf("%s: %w", st.Message(), context.Canceled)
	case codes.DeadlineExceeded:
		return fmt.Errorf("%s: %w", st.Message(), context.DeadlineExceeded)
	case codes.Unknown:
		return errors.New(st.Message())
	}
	if st.Code() == codes.Unavailable {
		// A transport failure: the plugin process went away mid-call or
		// is not reachable.
		return &Error{Kind: ErrPluginStopped, Message: "plugin stopped: " + st.Message()}
	}
	for _, k := range errorKinds {
		if k.code == st.Code() {
			return &Error{Kind: k.err, Message: st.Message()}
		}
	}
	return errors.New(st.Message())
}
