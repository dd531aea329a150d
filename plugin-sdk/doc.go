// Package sdk is what a Palvella plugin author imports.
//
// A plugin is a separate program that the Palvella core starts and talks to
// over gRPC, through hashicorp/go-plugin. Every plugin implements [Plugin]
// (Describe and Configure) and one or more category interfaces, each in its
// own package: authentication, authorization, credential, database, storage,
// job, action and engine. Request and response types are plain Go structs;
// the protocol buffers stay behind the shims.
//
// A plugin's main is a few lines:
//
//	func main() {
//		p := &myEngine{}
//		sdk.Serve(p, engine.Service(p))
//	}
//
// [Serve] owns the handshake (magic cookie, protocol versions, automatic
// mutual TLS) and answers `--describe` with the manifest as JSON, so that
// registries and `palvella plugin describe` can read what a binary is
// without configuring it.
//
// Errors travel as gRPC status codes with structured details. Return the
// sentinels ([ErrNotFound], [ErrInvalidArgument], ...) or an [*Error] built
// with [Errorf]; the core sees the same sentinel through [errors.Is].
package sdk
