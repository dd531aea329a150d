//go:build unix

package sqlite

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
)

// launch starts the test binary as the plugin process, as the core starts
// plugins (handshake, gRPC, automatic mutual TLS), configured with the
// database file at path.
func launch(t *testing.T, path string) (database.Database, *goplugin.Client) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), serveEnv+"=1")
	set := goplugin.PluginSet{
		sdk.BasePluginName:            &sdk.BasePlugin{},
		sdk.CategoryDatabase.String(): &database.GRPCPlugin{},
	}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: map[int]goplugin.PluginSet{sdk.ProtocolVersion: set},
		Cmd:              cmd,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "plugin", Output: hclog.DefaultOutput, Level: hclog.Off}),
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("start the plugin process: %v", err)
	}
	raw, err := rpc.Dispense(sdk.CategoryDatabase.String())
	if err != nil {
		t.Fatalf("dispense: %v", err)
	}
	db, ok := raw.(database.Database)
	if !ok {
		t.Fatalf("dispensed %T, not a database.Database", raw)
	}
	resp, err := db.Configure(context.Background(), &sdk.ConfigureRequest{Config: map[string]any{"path": path}})
	if err != nil || sdk.HasErrors(resp.Diagnostics) {
		t.Fatalf("Configure: %v %+v", err, resp)
	}
	return db, client
}

// TestDurabilityAfterSIGKILL kills the plugin process without warning
// between the writes and the checks: what was committed must survive.
func TestDurabilityAfterSIGKILL(t *testing.T) {
	sdktest.DatabaseDurability(t, func(t *testing.T, dir string) (database.Database, func()) {
		db, client := launch(t, filepath.Join(dir, "palvella.db"))
		return db, func() {
			if err := syscall.Kill(client.ReattachConfig().Pid, syscall.SIGKILL); err != nil {
				t.Fatalf("kill the plugin process: %v", err)
			}
			client.Kill()
		}
	})
}
