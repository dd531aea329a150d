// Command echo is the smallest useful plugin: a credential plugin whose Get
// returns a fixed value. The benchmarks call it to measure the plugin
// transport, with nothing else in the way.
package main

import (
	"github.com/palvella/palvella/bench/echoplugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/credential"
)

func main() {
	p := echoplugin.New()
	sdk.Serve(p, credential.Service(p))
}
