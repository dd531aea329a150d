package filesystem

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
	"github.com/palvella/palvella/plugin-sdk/storage"
)

func openAt(t testing.TB, root string) *Plugin {
	t.Helper()
	p := New()
	resp, err := p.Configure(context.Background(), &sdk.ConfigureRequest{Config: map[string]any{"root": root}})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if sdk.HasErrors(resp.Diagnostics) {
		t.Fatalf("Configure: %+v", resp.Diagnostics)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestConformance(t *testing.T) {
	sdktest.RunBoth(t, func(t *testing.T) storage.Storage { return openAt(t, t.TempDir()) }, storage.Service, sdktest.StorageSuite)
}

var runScope = storage.Scope{Kind: storage.ScopeRun, Namespace: "ns", Pipeline: "p", Run: "r1"}

func TestObjectsAreFilesLaidOutByScope(t *testing.T) {
	root := t.TempDir()
	p := openAt(t, root)
	if _, err := p.Put(context.Background(), storage.ObjectRef{Scope: runScope, Key: "logs/build.log"}, strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "objects", "run", "ns", "p", "r1", "logs", "build.log"))
	if err != nil || string(b) != "hello" {
		t.Fatalf("object file = %q, %v, want hello at objects/run/ns/p/r1/logs/build.log", b, err)
	}
	entries, err := os.ReadDir(filepath.Join(root, "tmp"))
	if err != nil || len(entries) != 0 {
		t.Fatalf("tmp holds %d entries after a Put, want none (%v)", len(entries), err)
	}
}

func TestAChangedFileGetsItsChecksumRecomputed(t *testing.T) {
	root := t.TempDir()
	p := openAt(t, root)
	ref := storage.ObjectRef{Scope: runScope, Key: "state"}
	if _, err := p.Put(context.Background(), ref, strings.NewReader("original")); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, "objects", "run", "ns", "p", "r1", "state")
	if err := os.WriteFile(file, []byte("edited by hand"), 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := p.Stat(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("edited by hand"))
	if info.SHA256 != hex.EncodeToString(sum[:]) || info.Size != int64(len("edited by hand")) {
		t.Fatalf("Stat after an edit = %+v, want the edited contents' size and sha256", info)
	}
}

func TestSymlinksOutOfTheRootAreNotFollowed(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("outside data"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := openAt(t, root)
	ctx := context.Background()

	// A scope folder that is a symlink to a folder outside the root.
	scopeParent := filepath.Join(root, "objects", "run", "ns", "p")
	if err := os.MkdirAll(scopeParent, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(scopeParent, "r1")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Put(ctx, storage.ObjectRef{Scope: runScope, Key: "planted"}, strings.NewReader("x")); err == nil {
		t.Error("Put through a symlink out of the root succeeded")
	}
	if _, err := os.Stat(filepath.Join(outside, "planted")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Put wrote outside the root (stat error %v)", err)
	}
	if rc, _, err := p.Get(ctx, storage.ObjectRef{Scope: runScope, Key: "secret"}); err == nil {
		b, _ := io.ReadAll(rc)
		rc.Close()
		t.Errorf("Get through a symlink out of the root returned %q", b)
	}
	if err := p.Delete(ctx, storage.ObjectRef{Scope: runScope, Key: "secret"}); err == nil {
		t.Error("Delete through a symlink out of the root succeeded")
	}
	if _, err := os.Stat(filepath.Join(outside, "secret")); err != nil {
		t.Errorf("the file outside the root is gone: %v", err)
	}

	// An object that is a symlink to a file outside the root.
	other := storage.Scope{Kind: storage.ScopeRun, Namespace: "ns", Pipeline: "p", Run: "r2"}
	dir := filepath.Join(scopeParent, "r2")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if rc, _, err := p.Get(ctx, storage.ObjectRef{Scope: other, Key: "link"}); err == nil {
		b, _ := io.ReadAll(rc)
		rc.Close()
		t.Errorf("Get of a symlink out of the root returned %q", b)
	}
	resp, err := p.List(ctx, &storage.ListRequest{Scope: other})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(resp.Items) != 0 {
		t.Errorf("List shows a symlink as an object: %+v", resp.Items)
	}
	if _, err := p.Prune(ctx, storage.ScopeRun, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(outside, "secret")); err != nil || string(b) != "outside data" {
		t.Errorf("Prune touched the file outside the root: %q, %v", b, err)
	}
}

func TestAKeyCannotBeAnObjectAndAFolder(t *testing.T) {
	p := openAt(t, t.TempDir())
	ctx := context.Background()
	if _, err := p.Put(ctx, storage.ObjectRef{Scope: runScope, Key: "a"}, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	_, err := p.Put(ctx, storage.ObjectRef{Scope: runScope, Key: "a/b"}, strings.NewReader("y"))
	if !errors.Is(err, sdk.ErrFailedPrecondition) {
		t.Fatalf("Put of a/b over the object a error = %v, want sdk.ErrFailedPrecondition", err)
	}
	if _, err := p.Put(ctx, storage.ObjectRef{Scope: runScope, Key: "c/d"}, strings.NewReader("y")); err != nil {
		t.Fatal(err)
	}
	_, err = p.Put(ctx, storage.ObjectRef{Scope: runScope, Key: "c"}, strings.NewReader("z"))
	if !errors.Is(err, sdk.ErrFailedPrecondition) {
		t.Fatalf("Put of c over the folder c error = %v, want sdk.ErrFailedPrecondition", err)
	}
	rc, _, err := p.Get(ctx, storage.ObjectRef{Scope: runScope, Key: "c/d"})
	if err != nil {
		t.Fatalf("c/d was lost: %v", err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "y" {
		t.Fatalf("c/d = %q", b)
	}
}

func TestReadersSeeTheOldObjectOrTheNewOne(t *testing.T) {
	p := openAt(t, t.TempDir())
	ctx := context.Background()
	ref := storage.ObjectRef{Scope: runScope, Key: "big"}
	old := bytes.Repeat([]byte("o"), 1<<20)
	if _, err := p.Put(ctx, ref, bytes.NewReader(old)); err != nil {
		t.Fatal(err)
	}
	rc, _, err := p.Get(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := p.Put(ctx, ref, bytes.NewReader(bytes.Repeat([]byte("n"), 1<<20))); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, old) {
		t.Fatal("a reader opened before a replacing Put saw a mix of the two objects")
	}
}

func TestConfigureCleansStaleTemporaryFiles(t *testing.T) {
	root := t.TempDir()
	openAt(t, root)
	stale := filepath.Join(root, "tmp", "dead.part")
	fresh := filepath.Join(root, "tmp", "live.part")
	for _, f := range []string{stale, fresh} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTemp)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	openAt(t, root)
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a stale temporary file survived Configure: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a recent temporary file (maybe a Put in progress) was removed: %v", err)
	}
}

func TestConfigureWithEmptyConfigUsesTheDefaultRoot(t *testing.T) {
	p := New()
	resp, err := p.Configure(context.Background(), &sdk.ConfigureRequest{})
	if err != nil || sdk.HasErrors(resp.Diagnostics) {
		t.Fatalf("Configure with no config: %v %+v", err, resp)
	}
	t.Cleanup(func() { _ = p.Close() })
	if got := p.fs.root.Name(); got != DefaultRoot() {
		t.Fatalf("root = %s, want %s", got, DefaultRoot())
	}
	scope := storage.Scope{Kind: storage.ScopeRun, Namespace: "default-root-test", Pipeline: "p", Run: "r"}
	ref := storage.ObjectRef{Scope: scope, Key: "k"}
	if _, err := p.Put(context.Background(), ref, strings.NewReader("x")); err != nil {
		t.Fatalf("Put into the default root: %v", err)
	}
	if err := p.Delete(context.Background(), ref); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}

func TestConfigureReportsBadSettings(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		config map[string]any
		field  string
	}{
		{"root not a string", map[string]any{"root": true}, "config.root"},
		{"empty root", map[string]any{"root": ""}, "config.root"},
		{"unknown setting", map[string]any{"bucket": "x"}, "config.bucket"},
		{"root is a file", map[string]any{"root": file}, "config.root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := New().Configure(context.Background(), &sdk.ConfigureRequest{Config: tc.config})
			if err != nil {
				t.Fatalf("Configure returned an error instead of a diagnostic: %v", err)
			}
			if len(resp.Diagnostics) != 1 || resp.Diagnostics[0].Field != tc.field {
				t.Fatalf("diagnostics = %+v, want one about %s", resp.Diagnostics, tc.field)
			}
		})
	}
}
