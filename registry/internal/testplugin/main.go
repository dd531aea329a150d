// Command testplugin is a tiny stand-in plugin for the registry's tests: it
// prints a manifest for --describe. Its name, version and protocol versions
// are set at build time with -ldflags -X.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
)

var (
	name      = "engine-test"
	version   = "0.0.0"
	protocols = "1"
	category  = "engine"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--describe" {
		var pv []int
		for _, s := range strings.Split(protocols, ",") {
			n, err := strconv.Atoi(s)
			if err != nil {
				fmt.Fprintln(os.Stderr, "bad protocols:", err)
				os.Exit(2)
			}
			pv = append(pv, n)
		}
		_ = json.NewEncoder(os.Stdout).Encode(map[string]any{
			"name": name, "version": version, "description": "test plugin",
			"categories": []string{category}, "protocolVersions": pv,
			"configSchema": map[string]any{"type": "object"},
		})
		return
	}
	fmt.Fprintln(os.Stderr, "This binary is a palvella test plugin; run it with --describe.")
	os.Exit(1)
}
