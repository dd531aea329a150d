package docker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugins/engine/docker/dockertest"
)

// engineWithout is newEngine without a host in the configuration, so that
// a job's context (or DOCKER_HOST) chooses the daemon.
func engineWithout(t *testing.T, extra map[string]any) *Plugin {
	t.Helper()
	cfg := map[string]any{"image": dockertest.Image, "kill_grace": "1s", "state_dir": stateDir(t)}
	for k, v := range extra {
		cfg[k] = v
	}
	p := New()
	resp, err := p.Configure(context.Background(), &sdk.ConfigureRequest{Config: cfg})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if sdk.HasErrors(resp.Diagnostics) { // a warning that DOCKER_HOST does not answer is expected
		t.Fatalf("Configure: %v", resp.Diagnostics)
	}
	return p
}

// writeContext writes a Docker CLI context named name whose docker
// endpoint is host, as `docker context create` does.
func writeContext(t *testing.T, dir, name, host string) {
	t.Helper()
	sum := sha256.Sum256([]byte(name))
	meta := filepath.Join(dir, "contexts", "meta", hex.EncodeToString(sum[:]))
	if err := os.MkdirAll(meta, 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{
		"Name":      name,
		"Metadata":  map[string]any{"Description": "test"},
		"Endpoints": map[string]any{"docker": map[string]any{"Host": host, "SkipTLSVerify": false}},
	})
	if err := os.WriteFile(filepath.Join(meta, "meta.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A job's context names a Docker CLI context; its endpoint is the daemon
// the job's containers run on. An unknown context is an error that names
// the parameter and says where contexts are listed.
func TestContextChoosesTheDaemon(t *testing.T) {
	d := dockertest.Shared(t)
	dir := t.TempDir()
	writeContext(t, dir, "ci-daemon", d.Host)
	// Without the context the engine would use DOCKER_HOST: point it
	// nowhere, so that only the context can reach the daemon.
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "nothing.sock"))
	p := engineWithout(t, map[string]any{"docker_config": dir})
	ctx := context.Background()

	ws, err := p.Setup(ctx, &engine.SetupRequest{Job: t.Name(), Options: map[string]any{"context": "ci-daemon"}})
	if err != nil {
		t.Fatalf("Setup on context ci-daemon: %v", err)
	}
	t.Cleanup(func() { p.Teardown(ctx, ws.ID) })
	res, out, _ := execText(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "test -f /.dockerenv && echo in-a-container"})
	if res.ExitCode != 0 || out != "in-a-container\n" {
		t.Fatalf("on context ci-daemon: exit %d, output %q", res.ExitCode, out)
	}

	_, err = p.Setup(ctx, &engine.SetupRequest{Job: t.Name() + "-2", Options: map[string]any{"context": "no-such"}})
	if err == nil || !strings.Contains(err.Error(), `no Docker context named "no-such"`) || !strings.Contains(err.Error(), "docker context ls") {
		t.Fatalf("Setup on an unknown context: %v, want a message naming it and `docker context ls`", err)
	}
	if !errors.Is(err, sdk.ErrInvalidArgument) {
		t.Errorf("unknown context: %v, want an invalid argument", err)
	}

	// host wins over context.
	ws2, err := p.Setup(ctx, &engine.SetupRequest{Job: t.Name() + "-3", Options: map[string]any{"context": "no-such", "host": d.Host}})
	if err != nil {
		t.Fatalf("Setup with host and an unknown context: %v, want host to win", err)
	}
	p.Teardown(ctx, ws2.ID)
}

// platform chooses the platform of the job's image and containers: the
// image's own runs; another, with the image only local, is refused with
// the daemon's reason on the image.
func TestPlatform(t *testing.T) {
	p := newEngine(t, nil)
	ctx := context.Background()
	ws := setup(t, p, map[string]any{"platform": "linux/amd64"})
	res, out, _ := execText(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "uname -m"})
	if res.ExitCode != 0 || out != "x86_64\n" {
		t.Fatalf("platform linux/amd64: exit %d, output %q", res.ExitCode, out)
	}

	ws2, err := p.Setup(ctx, &engine.SetupRequest{Job: t.Name() + "-arm", Options: map[string]any{"platform": "linux/arm64", "pull": "never"}})
	if err == nil {
		defer p.Teardown(ctx, ws2.ID)
		_, err = p.Exec(ctx, &engine.ExecRequest{WorkspaceID: ws2.ID, Script: "true"}, func(string, []byte) error { return nil })
	}
	if err == nil || !strings.Contains(err.Error(), dockertest.Image) {
		t.Fatalf("platform linux/arm64 of an amd64-only local image: %v, want an error naming the image", err)
	}

	if _, diags := parseParams(map[string]any{"platform": "linux/arm/v7/extra"}, defaultParams(), "options.", nil); len(diags) != 1 || diags[0].Field != "options.platform" {
		t.Fatalf("a platform of four parts: %+v, want one diagnostic on options.platform", diags)
	}
}
