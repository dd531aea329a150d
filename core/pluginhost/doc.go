// Package pluginhost is the core's plugin manager: it launches plugins with
// hashicorp/go-plugin (gRPC only, mutual TLS, the binary's sha256 checked at
// every launch, a minimal environment), configures them, supervises them
// (health checks, restart with backoff after a crash), hands out category
// clients, and stops every plugin on shutdown.
//
// Builtin plugins are the palvella binary itself, re-executed as
// `palvella plugin serve NAME`; they take exactly the same path as installed
// plugins.
package pluginhost
