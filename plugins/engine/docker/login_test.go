package docker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugins/engine/docker/dockertest"
)

// pullAndRun sets a job up on an image only the registry has, with the
// given login, and runs one command in it.
func pullAndRun(t *testing.T, p *Plugin, image string, loginParam map[string]any) (string, error) {
	t.Helper()
	ctx := context.Background()
	ws, err := p.Setup(ctx, &engine.SetupRequest{Job: t.Name(), Options: map[string]any{"image": image, "login": loginParam}})
	if err != nil {
		return "", err
	}
	defer p.Teardown(ctx, ws.ID)
	var out strings.Builder
	res, err := p.Exec(ctx, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "echo pulled-and-ran"}, func(s string, b []byte) error {
		if s == engine.Stdout {
			out.Write(b)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return out.String(), fmt.Errorf("exit %d", res.ExitCode)
	}
	return out.String(), nil
}

// A job's image on a registry that asks for a password is pulled with the
// job's login (username and password, a credential helper, or a
// credentials store), from a real Distribution registry; a wrong password
// fails naming the image, and the password is in no message.
func TestLoginPullsFromARegistryThatAsksForAPassword(t *testing.T) {
	d := dockertest.Shared(t)
	reg := dockertest.StartRegistry(t)
	p := newEngine(t, nil)

	image := func(name string) string {
		ref := reg.Addr + "/team/" + name + ":1"
		reg.Push(t, d, dockertest.Image, ref)
		return ref
	}

	t.Run("anonymous pull is refused", func(t *testing.T) {
		_, err := pullAndRun(t, p, image("anon"), nil)
		if err == nil || !strings.Contains(err.Error(), "could not be pulled") || !strings.Contains(err.Error(), "team/anon") {
			t.Fatalf("anonymous pull of a private image: %v, want a refusal naming the image", err)
		}
	})

	t.Run("username and password", func(t *testing.T) {
		out, err := pullAndRun(t, p, image("userpass"), map[string]any{"username": reg.User, "password": reg.Password})
		if err != nil || out != "pulled-and-ran\n" {
			t.Fatalf("pull with username/password: %q, %v", out, err)
		}
	})

	t.Run("a wrong password fails without showing it", func(t *testing.T) {
		const wrong = "not-the-password-5521"
		_, err := pullAndRun(t, p, image("wrong"), map[string]any{"username": reg.User, "password": wrong})
		if err == nil || !strings.Contains(err.Error(), "team/wrong") {
			t.Fatalf("pull with a wrong password: %v, want a refusal naming the image", err)
		}
		if strings.Contains(err.Error(), wrong) {
			t.Fatalf("the error shows the password: %v", err)
		}
	})

	// A credential helper is a program named docker-credential-NAME on
	// the engine's PATH that answers `get` with the registry's
	// credentials (the Docker CLI's protocol).
	helpers := t.TempDir()
	calls := filepath.Join(helpers, "calls")
	script := fmt.Sprintf(`#!/bin/sh
read server
echo "$1 $server" >> %s
printf '{"ServerURL":"%%s","Username":"%s","Secret":"%s"}\n' "$server"
`, calls, reg.User, reg.Password)
	if err := os.WriteFile(filepath.Join(helpers, "docker-credential-palvellatest"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", helpers+":"+os.Getenv("PATH"))

	t.Run("credHelpers", func(t *testing.T) {
		out, err := pullAndRun(t, p, image("helper"), map[string]any{"credHelpers": map[string]any{reg.Addr: "palvellatest"}})
		if err != nil || out != "pulled-and-ran\n" {
			t.Fatalf("pull with a credential helper: %q, %v", out, err)
		}
		b, _ := os.ReadFile(calls)
		if !strings.Contains(string(b), "get "+reg.Addr) {
			t.Fatalf("the helper was asked %q, want get %s", b, reg.Addr)
		}
	})

	t.Run("credsStore", func(t *testing.T) {
		out, err := pullAndRun(t, p, image("store"), map[string]any{"credsStore": "palvellatest"})
		if err != nil || out != "pulled-and-ran\n" {
			t.Fatalf("pull with a credentials store: %q, %v", out, err)
		}
	})

	t.Run("a helper that is missing is named", func(t *testing.T) {
		_, err := pullAndRun(t, p, image("nohelper"), map[string]any{"credsStore": "absent"})
		if err == nil || !strings.Contains(err.Error(), "docker-credential-absent") {
			t.Fatalf("pull with a missing helper: %v, want its program named", err)
		}
	})
}
