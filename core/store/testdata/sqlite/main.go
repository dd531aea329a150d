// Command sqlite serves the first-party sqlite database plugin, for the
// store's tests to run against the real database over gRPC.
package main

import (
	"os"

	"github.com/palvella/palvella/plugins/database/sqlite"
)

func main() { os.Exit(sqlite.Serve()) }
