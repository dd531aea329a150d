package dockertest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
	"golang.org/x/crypto/bcrypt"
)

// RegistryInstall says how to get the registry binary Registry starts.
const RegistryInstall = "build the Distribution registry with .ci/build-registry and set PALVELLA_REGISTRY_BIN to the path it prints (.ci/run does it)"

// Registry is a real Distribution registry (the one behind Docker Hub and
// most private registries) on loopback, which asks for a password: a
// Docker daemon treats registries on 127.0.0.0/8 as insecure, so it talks
// plain HTTP to it without further set-up.
type Registry struct {
	// Addr is host:port, the registry part of an image reference.
	Addr           string
	User, Password string
}

// StartRegistry starts a registry with one user for the test; it stops
// when the test ends. The test fails, saying how to build the registry,
// when PALVELLA_REGISTRY_BIN is not set and no registry is on PATH.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	bin := os.Getenv("PALVELLA_REGISTRY_BIN")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("registry"); err != nil {
			t.Fatalf("no registry binary: %s", RegistryInstall)
		}
	}
	dir := t.TempDir()
	r := &Registry{User: "palvella-ci", Password: "pw-" + fmt.Sprint(time.Now().UnixNano())}
	hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(r.User+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.Addr = ln.Addr().String()
	ln.Close()
	conf := fmt.Sprintf(`version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: %[1]s/data}
http:
  addr: %[2]s
auth:
  htpasswd:
    realm: palvella-test
    path: %[1]s/htpasswd
`, dir, r.Addr)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the registry %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + r.Addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the registry did not answer on %s: %v\n%s", r.Addr, err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Auth is the encoded credentials of the registry's user, as the Engine
// API takes them.
func (r *Registry) Auth() string {
	b, _ := json.Marshal(registry.AuthConfig{Username: r.User, Password: r.Password, ServerAddress: r.Addr})
	return base64.URLEncoding.EncodeToString(b)
}

// Push tags the daemon's local image src as ref in the registry, pushes
// it with the user's password, and removes the local tag: a job that
// wants ref must pull it.
func (r *Registry) Push(t testing.TB, d *Daemon, src, ref string) {
	t.Helper()
	c, err := d.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.ImageTag(ctx, client.ImageTagOptions{Source: src, Target: ref}); err != nil {
		t.Fatalf("tag %s as %s: %v", src, ref, err)
	}
	resp, err := c.ImagePush(ctx, ref, client.ImagePushOptions{RegistryAuth: r.Auth()})
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
		if msg.Error != nil {
			t.Fatalf("push %s: %s", ref, msg.Error.Message)
		}
	}
	if _, err := c.ImageRemove(ctx, ref, client.ImageRemoveOptions{}); err != nil {
		t.Fatalf("remove the local tag %s: %v", ref, err)
	}
}
