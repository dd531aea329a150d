package lock_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/lock"
)

func TestSaveLoadVerify(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "engine-x")
	os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755)
	sum := sha256.Sum256([]byte("#!/bin/sh\n"))
	path := filepath.Join(dir, "plugins.lock")

	lf, err := lock.Load(path)
	if err != nil || len(lf.Plugins) != 0 {
		t.Fatalf("missing lock: %v %v", lf, err)
	}
	lf.Put(lock.Entry{Name: "engine-x", Version: "1.0.0", Source: lock.SourceRegistry, Registry: "acme",
		Categories: []string{"engine"}, ProtocolVersions: []int{1}, Path: bin, SHA256: hex.EncodeToString(sum[:]),
		Artifacts: map[string]string{"linux/amd64": hex.EncodeToString(sum[:])}})
	lf.Put(lock.Entry{Name: "action-a", Version: "0.1.0", Source: lock.SourceLocal, Path: bin, SHA256: hex.EncodeToString(sum[:])})
	if err := lf.Save(path); err != nil {
		t.Fatal(err)
	}
	again, err := lock.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Plugins) != 2 || again.Plugins[0].Name != "action-a" || again.Get("engine-x").Registry != "acme" {
		t.Fatalf("reloaded %+v", again.Plugins)
	}
	if _, err := again.Verify(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(bin, []byte("#!/bin/sh\necho pwned\n"), 0o755)
	checks, err := again.Verify()
	if !errors.Is(err, registry.ErrChecksum) || len(checks) != 2 || checks[0].Err == nil || checks[1].Err == nil {
		t.Fatalf("verify after edit: %v %+v", err, checks)
	}
	if !again.Delete("engine-x") || again.Delete("engine-x") {
		t.Error("delete")
	}
}

func TestRejectsBadLock(t *testing.T) {
	for _, bad := range []string{
		`{"formatVersion":1,"plugins":[{"name":"engine-a","version":"1","source":"registry","path":"/x","sha256":"nothex"}]}`,
		`{"formatVersion":1,"plugins":[{"name":"engine-a","version":"1","source":"web","path":"/x","sha256":"` + hex.EncodeToString(make([]byte, 32)) + `"}]}`,
		`{"formatVersion":9,"plugins":[]}`,
		`{"formatVersion":1,"plugins":[{"name":"../../etc","version":"1","source":"local","path":"/x","sha256":"` + hex.EncodeToString(make([]byte, 32)) + `"}]}`,
		`{"formatVersion":1,"plugins":[],"extra":1}`,
		`not json`,
	} {
		if _, err := lock.Parse([]byte(bad)); !errors.Is(err, registry.ErrInvalidIndex) {
			t.Errorf("Parse(%s) = %v", bad, err)
		}
	}
}

func TestSaveRefusesInvalidAndKeepsOldFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plugins.lock")
	good := &lock.File{}
	good.Put(lock.Entry{Name: "engine-a", Version: "1.0.0", Source: lock.SourceLocal, Path: "/x", SHA256: hex.EncodeToString(make([]byte, 32))})
	if err := good.Save(path); err != nil {
		t.Fatal(err)
	}
	bad := &lock.File{}
	bad.Put(lock.Entry{Name: "engine-b", Version: "1.0.0", Source: lock.SourceLocal, Path: "/x", SHA256: "short"})
	if err := bad.Save(path); !errors.Is(err, registry.ErrInvalidIndex) {
		t.Fatalf("saved an invalid lock: %v", err)
	}
	lf, err := lock.Load(path)
	if err != nil || lf.Get("engine-a") == nil {
		t.Errorf("old lock lost: %v", err)
	}
}
