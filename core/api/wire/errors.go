package wire

import (
	"context"
	"net/http"
	"strings"

	"github.com/palvella/palvella/plugin-sdk/types"
)

// ErrorResponse is the body of every error the API returns.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody says what went wrong.
type ErrorBody struct {
	// Code is a stable, machine-readable name: one of the Code constants.
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the input the error is about, when there is one.
	Field string `json:"field,omitempty"`
	// Problems lists every problem of a pipeline file that failed
	// validation (code validation_failed).
	Problems []Problem `json:"problems,omitempty"`
}

// Error codes. Each sdk sentinel has its code; validation_failed carries
// Problems; request_too_large is a body over the route's limit.
const (
	CodeInvalidArgument    = "invalid_argument"
	CodeValidationFailed   = "validation_failed"
	CodeRequestTooLarge    = "request_too_large"
	CodeNotFound           = "not_found"
	CodeAlreadyExists      = "already_exists"
	CodeConflict           = "conflict"
	CodeFailedPrecondition = "failed_precondition"
	CodePermissionDenied   = "permission_denied"
	CodeUnauthenticated    = "unauthenticated"
	CodeUnimplemented      = "unimplemented"
	CodeResourceExhausted  = "resource_exhausted"
	CodeUnavailable        = "unavailable"
	CodeDeadlineExceeded   = "deadline_exceeded"
	CodeCanceled           = "canceled"
	CodeInternal           = "internal"
)

// ErrorCodes ties each error code to its HTTP status and the sdk sentinel
// it stands for (nil for codes with no sentinel). The client reads it to
// turn a response back into an error for which errors.Is holds.
var ErrorCodes = []struct {
	Code   string
	Status int
	Err    error
}{
	{CodeInvalidArgument, http.StatusBadRequest, types.ErrInvalidArgument},
	{CodeValidationFailed, http.StatusUnprocessableEntity, types.ErrInvalidArgument},
	{CodeRequestTooLarge, http.StatusRequestEntityTooLarge, types.ErrInvalidArgument},
	{CodeNotFound, http.StatusNotFound, types.ErrNotFound},
	{CodeAlreadyExists, http.StatusConflict, types.ErrAlreadyExists},
	{CodeConflict, http.StatusConflict, types.ErrConflict},
	{CodeFailedPrecondition, http.StatusConflict, types.ErrFailedPrecondition},
	{CodePermissionDenied, http.StatusForbidden, types.ErrPermissionDenied},
	{CodeUnauthenticated, http.StatusUnauthorized, types.ErrUnauthenticated},
	{CodeUnimplemented, http.StatusNotImplemented, types.ErrUnimplemented},
	{CodeResourceExhausted, http.StatusTooManyRequests, types.ErrResourceExhausted},
	{CodeUnavailable, http.StatusServiceUnavailable, types.ErrPluginStopped},
	{CodeDeadlineExceeded, http.StatusGatewayTimeout, context.DeadlineExceeded},
	{CodeCanceled, 499, context.Canceled},
	{CodeInternal, http.StatusInternalServerError, types.ErrInternal},
}

// Error is an error the API answered, as the Go client gives it back:
// Kind is the sentinel of its code (types.ErrNotFound, ...; the same values
// as sdk.ErrNotFound), so errors.Is holds with it.
type Error struct {
	Kind error
	// Code is the response's error code (CodeNotFound, ...), or empty when
	// the answer was not one of Palvella's.
	Code string
	// Field names the input the error is about, when there is one.
	Field   string
	Message string
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

// Unwrap returns the error's kind.
func (e *Error) Unwrap() error { return e.Kind }

// KindOf is the sentinel of an error code; types.ErrInternal for a code
// with none.
func KindOf(code string) error {
	for _, c := range ErrorCodes {
		if c.Code == code && c.Err != nil {
			return c.Err
		}
	}
	return types.ErrInternal
}
