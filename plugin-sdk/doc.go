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
// # What the core checks for you
//
// The core compiles the JSON Schemas of a plugin's [Manifest] once per
// launch, right after Describe; a schema that does not compile fails the
// launch. It then checks:
//
//   - the configuration against ConfigSchema, before Configure, once its
//     {from_credential: NAME} values are resolved. A configuration that does
//     not match never reaches the plugin: the launch fails with an error
//     naming the plugin and the field ("plugin database-foo: configuration:
//     path: got number, want string").
//   - an action's params and a job's with against the type's ParamsSchema,
//     when a pipeline is applied (each problem names the file, the line and
//     the field) and again just before Run or Expand, once the `${{ ... }}`
//     in them are interpolated. A string holding `${{ ... }}` is not checked
//     at apply; after interpolation it is always a string, so a param that
//     an expression may give should accept a string (as "true"/"false" for
//     a boolean). An action's env is the core's field, given to every
//     action: it is checked only if the type's schema declares env.
//
// Formats are asserted ("format": "regex" is a Go regular expression), and
// a schema may not refer to other documents ($ref to a URL). Unknown
// keywords, such as the annotations in schema.go, are allowed. Write
// "additionalProperties": false to have misspelt fields refused.
//
// What a schema cannot say is still the plugin's to check, and it must:
// meaning across fields, values in range for the plugin's own reasons,
// files and names that must exist. And the plugin must not rely on the
// core's check alone: it may be run by `palvella plugin describe`, the
// conformance kit or another host. Return such problems as diagnostics
// (Configure) or as [ErrInvalidArgument] errors naming the field.
//
// Errors travel as gRPC status codes with structured details. Return the
// sentinels ([ErrNotFound], [ErrInvalidArgument], ...) or an [*Error] built
// with [Errorf]; the core sees the same sentinel through [errors.Is].
package sdk
