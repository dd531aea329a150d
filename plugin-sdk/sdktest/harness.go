// Package sdktest is the conformance kit of Palvella plugins: one suite per
// category that every plugin, first-party or not, must pass, and the
// harness that runs a suite against an implementation in-process, through a
// real gRPC connection in the same process, or against a real plugin
// process.
//
// A plugin author's test is a few lines:
//
//	func TestConformance(t *testing.T) {
//		sdktest.RunBoth(t, func(t *testing.T) engine.Engine { return newEngine(t) },
//			engine.Service, sdktest.EngineSuite)
//	}
//
// and, against the built binary (the factory returns a configured plugin,
// so the test configures what it launched):
//
//	func TestBinary(t *testing.T) {
//		sdktest.EngineSuite(t, func(t *testing.T) engine.Engine {
//			e := sdktest.Dispense[engine.Engine](t, sdktest.Launch(t, exec.Command("./my-plugin")), sdk.CategoryEngine)
//			if _, err := e.Configure(context.Background(), &sdk.ConfigureRequest{}); err != nil {
//				t.Fatalf("Configure: %v", err)
//			}
//			return e
//		})
//	}
package sdktest

import (
	"testing"

	goplugin "github.com/hashicorp/go-plugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// Factory returns a fresh, configured plugin for one subtest.
type Factory[T sdk.Plugin] func(t *testing.T) T

// Suite is a conformance suite of one category.
type Suite[T sdk.Plugin] func(t *testing.T, newPlugin Factory[T])

// RunBoth runs suite twice: against the implementation directly
// ("in-process") and through a real gRPC connection to it ("grpc"), which
// exercises the SDK's shims and the error mapping.
func RunBoth[T sdk.Plugin](t *testing.T, newImpl Factory[T], service func(T) sdk.Service, suite Suite[T]) {
	t.Helper()
	t.Run("in-process", func(t *testing.T) { suite(t, newImpl) })
	t.Run("grpc", func(t *testing.T) {
		suite(t, func(t *testing.T) T { return OverGRPC(t, newImpl(t), service) })
	})
}

// OverGRPC serves impl on a gRPC connection in this process and returns a
// client of it, as the core would see the plugin. The connection is closed
// when the test ends.
func OverGRPC[T sdk.Plugin](t testing.TB, impl T, service func(T) sdk.Service) T {
	t.Helper()
	svc := service(impl)
	name := svc.Category.String()
	client, _ := goplugin.TestPluginGRPCConn(t, false, map[string]goplugin.Plugin{
		sdk.BasePluginName: sdk.NewBasePlugin(impl, svc),
		name:               svc.Plugin,
	})
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(name)
	if err != nil {
		t.Fatalf("dispense %s: %v", name, err)
	}
	out, ok := raw.(T)
	if !ok {
		t.Fatalf("dispensed %s client is %T, which does not implement the category interface", name, raw)
	}
	return out
}
