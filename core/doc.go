// Package core holds no code: its packages are the Palvella host, usable
// as a library (see docs/embedding.md).
//
//   - [github.com/palvella/palvella/core/server] wires a whole server.
//   - [github.com/palvella/palvella/core/orchestrator] applies pipelines,
//     schedules runs and executes jobs through plugins.
//   - [github.com/palvella/palvella/core/pluginhost] launches, verifies and
//     supervises plugins.
//   - [github.com/palvella/palvella/core/api] is the HTTP API, and
//     [github.com/palvella/palvella/core/client] its Go client.
//   - [github.com/palvella/palvella/core/config] reads the server's
//     configuration file, [github.com/palvella/palvella/core/spec] pipeline
//     files.
//
// The test of this package keeps the layers pointing one way.
package core
