package api

import (
	"time"

	"github.com/palvella/palvella/core/api/wire"
	"github.com/palvella/palvella/core/resource"
)

// The API's shapes live in core/api/wire, which the Go client imports
// without the server; this package gives them under its own name.
type (
	ReloadResult      = wire.ReloadResult
	ApplyRequest      = wire.ApplyRequest
	ApplyResult       = wire.ApplyResult
	PageRequest       = wire.PageRequest
	Page[T any]       = wire.Page[T]
	ValidationError   = wire.ValidationError
	Problem           = wire.Problem
	ErrorResponse     = wire.ErrorResponse
	ErrorBody         = wire.ErrorBody
	LogLine           = wire.LogLine
	StreamEnd         = wire.StreamEnd
	RunDump           = wire.RunDump
	Timeline          = wire.Timeline
	TimelineJob       = wire.TimelineJob
	TimelineAction    = wire.TimelineAction
	Health            = wire.Health
	ValidateResult    = wire.ValidateResult
	StartRunRequest   = wire.StartRunRequest
	CancelRequest     = wire.CancelRequest
	DecideRequest     = wire.DecideRequest
	Token             = wire.Token
	RotatedToken      = wire.RotatedToken
	Credential        = wire.Credential
	TokenRequest      = wire.TokenRequest
	NewToken          = wire.NewToken
	CredentialRequest = wire.CredentialRequest
)

// Error codes (see wire).
const (
	CodeInvalidArgument    = wire.CodeInvalidArgument
	CodeValidationFailed   = wire.CodeValidationFailed
	CodeRequestTooLarge    = wire.CodeRequestTooLarge
	CodeNotFound           = wire.CodeNotFound
	CodeAlreadyExists      = wire.CodeAlreadyExists
	CodeConflict           = wire.CodeConflict
	CodeFailedPrecondition = wire.CodeFailedPrecondition
	CodePermissionDenied   = wire.CodePermissionDenied
	CodeUnauthenticated    = wire.CodeUnauthenticated
	CodeUnimplemented      = wire.CodeUnimplemented
	CodeResourceExhausted  = wire.CodeResourceExhausted
	CodeUnavailable        = wire.CodeUnavailable
	CodeDeadlineExceeded   = wire.CodeDeadlineExceeded
	CodeCanceled           = wire.CodeCanceled
	CodeInternal           = wire.CodeInternal
)

// ErrorCodes ties each error code to its HTTP status and sentinel.
var ErrorCodes = wire.ErrorCodes

// TimelineOf computes a run's timeline; now ends what has not ended.
func TimelineOf(run *resource.Run, now time.Time) Timeline { return wire.TimelineOf(run, now) }
