// Command palvella is the Palvella automation server, its worker, its
// command-line client and its plugin and registry tools, in one binary.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:]))
}
