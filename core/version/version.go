// Package version holds the version of the Palvella core, set at build time
// with -ldflags "-X github.com/palvella/palvella/core/version.Version=...".
package version

// Version of this build.
var Version = "0.1.0-dev"
