package types

import "errors"

// Sentinel errors of the plugin contracts. A plugin returns them (wrapped,
// or through sdk.Errorf); the core and the API's client give back errors
// for which errors.Is answers true with the same sentinel, across gRPC and
// HTTP. The sdk package gives them under its own name (sdk.ErrNotFound).
var (
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrConflict           = errors.New("revision conflict")
	ErrFailedPrecondition = errors.New("failed precondition")
	ErrPermissionDenied   = errors.New("permission denied")
	ErrUnauthenticated    = errors.New("unauthenticated")
	ErrUnimplemented      = errors.New("not implemented by this plugin")
	ErrResourceExhausted  = errors.New("resource exhausted")
	// ErrPluginStopped is returned for calls that were in flight when the
	// plugin process stopped, and for calls made while it is down.
	ErrPluginStopped = errors.New("plugin stopped")
	ErrInternal      = errors.New("internal plugin error")
)
