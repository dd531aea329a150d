package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/action"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"github.com/palvella/palvella/plugin-sdk/authorization"
	"github.com/palvella/palvella/plugin-sdk/credential"
	"github.com/palvella/palvella/plugin-sdk/database"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugin-sdk/job"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
	"github.com/palvella/palvella/plugin-sdk/storage"
)

// The conformance kits run here against every builtin plugin as a real
// process: the palvella binary re-executed as `palvella plugin serve NAME`,
// through the go-plugin handshake with mutual TLS. The plugins' own
// packages run the same kits in-process and over an in-memory gRPC
// connection.

// launchBuiltin starts a builtin plugin process, configures it and returns
// its client of category c.
func launchBuiltin[T sdk.Plugin](t *testing.T, name string, c sdk.Category, config map[string]any, host sdk.Host) (T, *sdktest.Process) {
	t.Helper()
	p := sdktest.Launch(t, exec.Command(palvellaBin, "plugin", "serve", name))
	client := sdktest.Dispense[T](t, p, c)
	resp, err := client.Configure(context.Background(), &sdk.ConfigureRequest{Config: config, Host: host})
	if err != nil {
		t.Fatalf("configure %s: %v", name, err)
	}
	if sdk.HasErrors(resp.Diagnostics) {
		t.Fatalf("configure %s: %+v", name, resp.Diagnostics)
	}
	return client, p
}

func TestBuiltinConformanceOverRealProcesses(t *testing.T) {
	t.Run("engine-local", func(t *testing.T) {
		sdktest.EngineSuite(t, func(t *testing.T) engine.Engine {
			c, _ := launchBuiltin[engine.Engine](t, "engine-local", sdk.CategoryEngine, map[string]any{"root": t.TempDir()}, nil)
			return c
		})
	})
	t.Run("action-standard", func(t *testing.T) {
		sdktest.ActionSuite(t, func(t *testing.T) action.Action {
			c, _ := launchBuiltin[action.Action](t, "action-standard", sdk.CategoryAction, nil, sdktest.NewLocalHost(t.TempDir()))
			return c
		})
	})
	t.Run("job-terraform", func(t *testing.T) {
		sdktest.JobSuite(t, func(t *testing.T) job.Job {
			c, _ := launchBuiltin[job.Job](t, "job-terraform", sdk.CategoryJob, nil, nil)
			return c
		})
	})
	t.Run("storage-filesystem", func(t *testing.T) {
		sdktest.StorageSuite(t, func(t *testing.T) storage.Storage {
			c, _ := launchBuiltin[storage.Storage](t, "storage-filesystem", sdk.CategoryStorage, map[string]any{"root": t.TempDir()}, nil)
			return c
		})
	})
	t.Run("database-sqlite", func(t *testing.T) {
		sdktest.DatabaseSuite(t, func(t *testing.T) database.Database {
			c, _ := launchBuiltin[database.Database](t, "database-sqlite", sdk.CategoryDatabase, map[string]any{"path": filepath.Join(t.TempDir(), "palvella.db")}, nil)
			return c
		})
	})
	t.Run("database-sqlite survives SIGKILL", func(t *testing.T) {
		sdktest.DatabaseDurability(t, func(t *testing.T, dir string) (database.Database, func()) {
			c, p := launchBuiltin[database.Database](t, "database-sqlite", sdk.CategoryDatabase, map[string]any{"path": filepath.Join(dir, "palvella.db")}, nil)
			return c, func() {
				pid := p.Client.ReattachConfig().Pid
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
					t.Fatalf("kill %d: %v", pid, err)
				}
				p.Client.Kill()
			}
		})
	})
	t.Run("credential-builtin", func(t *testing.T) {
		sdktest.CredentialSuite(t, func(t *testing.T) credential.Credential {
			c, _ := launchBuiltin[credential.Credential](t, "credential-builtin", sdk.CategoryCredential, map[string]any{"path": filepath.Join(t.TempDir(), "credentials.db")}, nil)
			return c
		})
	})
	t.Run("authentication-token", func(t *testing.T) {
		sdktest.AuthenticationSuite(t, func(t *testing.T) authentication.Authentication {
			c, _ := launchBuiltin[authentication.Authentication](t, "authentication-token", sdk.CategoryAuthentication, map[string]any{"path": filepath.Join(t.TempDir(), "tokens.db")}, nil)
			return c
		})
	})
	t.Run("authorization-rbac", func(t *testing.T) {
		who := func(name string, roles ...string) *authentication.Identity {
			return &authentication.Identity{Name: name, Type: "token", Status: authentication.StatusAuthenticated, Roles: roles}
		}
		req := func(id *authentication.Identity, method, resource string) authorization.AuthorizeRequest {
			return authorization.AuthorizeRequest{Identity: id, Method: method, Resource: resource}
		}
		fx := sdktest.AuthorizationFixture{Cases: []sdktest.AuthorizationCase{
			{Name: "admin reads credential values", Request: req(who("root", "admin"), "credentialRead", "credential:prod-db"), Allowed: true},
			{Name: "viewer reads a pipeline", Request: req(who("v", "viewer"), "read", "pipeline:default/build"), Allowed: true},
			{Name: "viewer cannot write", Request: req(who("v", "viewer"), "write", "pipeline:default/build")},
			{Name: "developer cannot approve", Request: req(who("d", "developer"), "approve", "run:default/build/7")},
			{Name: "operator approves", Request: req(who("o", "operator"), "approve", "run:default/build/7"), Allowed: true},
			{Name: "no roles", Request: req(who("nobody"), "read", "pipeline:default/build")},
		}}
		sdktest.AuthorizationSuite(fx)(t, func(t *testing.T) authorization.Authorization {
			c, _ := launchBuiltin[authorization.Authorization](t, "authorization-rbac", sdk.CategoryAuthorization, nil, nil)
			return c
		})
	})
}
