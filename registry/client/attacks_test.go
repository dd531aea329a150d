package client_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/client"
	"github.com/palvella/palvella/registry/index"
	"github.com/palvella/palvella/registry/internal/regtest"
	"github.com/palvella/palvella/registry/sign"
)

// artifactPath returns the on-disk file of the first artifact of version v.
func artifactPath(t *testing.T, f *regtest.Fixture, v string) string {
	t.Helper()
	ix := f.Index(t)
	for _, ver := range ix.Lookup(plugin).Versions {
		if ver.Version == v {
			return filepath.Join(f.Dir, filepath.FromSlash(ver.Artifacts[0].URL))
		}
	}
	t.Fatalf("no version %s", v)
	return ""
}

// refuse installs constraint and checks the refusal has kind want and
// nothing was installed.
func refuse(t *testing.T, c *client.Client, constraint string, want error) error {
	t.Helper()
	_, err := c.Install(context.Background(), client.Request{Name: plugin, Constraint: constraint})
	if !errors.Is(err, want) {
		t.Fatalf("install %s@%s: got %v, want %v", plugin, constraint, err, want)
	}
	var re *registry.Error
	if !errors.As(err, &re) || re.Detail == "" {
		t.Errorf("refusal is not a typed error with detail: %#v", err)
	}
	assertNothingInstalled(t, c, plugin)
	return err
}

func TestAttackWrongSHA256(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	p := artifactPath(t, f, "1.0.0")
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 0xff // same size, other content
	os.WriteFile(p, b, 0o644)
	refuse(t, newClient(t, reg(f, serve(t, f).URL)), "1.0.0", registry.ErrChecksum)
}

func TestAttackTruncatedDownload(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	p := artifactPath(t, f, "1.0.0")
	st, _ := os.Stat(p)
	os.Truncate(p, st.Size()-100)
	refuse(t, newClient(t, reg(f, serve(t, f).URL)), "1.0.0", registry.ErrSize)
}

func TestAttackTruncatedConnection(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	data, _ := os.ReadFile(artifactPath(t, f, "1.0.0"))
	srv := tamperingServer(t, f, func(w http.ResponseWriter, r *http.Request) bool {
		// Announce the full length, then hang up half way.
		w.Header().Set("Content-Length", itoa(len(data)))
		w.Write(data[:len(data)/2])
		panic(http.ErrAbortHandler)
	})
	refuse(t, newClient(t, reg(f, srv.URL)), "1.0.0", registry.ErrSize)
}

func TestAttackOversizedDownload(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	p := artifactPath(t, f, "1.0.0")
	data, _ := os.ReadFile(p)

	t.Run("announced", func(t *testing.T) {
		os.WriteFile(p, append(bytes.Clone(data), make([]byte, 4096)...), 0o644)
		defer os.WriteFile(p, data, 0o644)
		refuse(t, newClient(t, reg(f, serve(t, f).URL)), "1.0.0", registry.ErrSize)
	})
	t.Run("streamed without length", func(t *testing.T) {
		var sent int
		srv := tamperingServer(t, f, func(w http.ResponseWriter, r *http.Request) bool {
			// No Content-Length: the body is chunked and never ends on its own.
			w.Write(data)
			sent = len(data)
			chunk := make([]byte, 32<<10)
			for i := 0; i < 1024; i++ { // up to 32 MiB unless the client hangs up
				if _, err := w.Write(chunk); err != nil {
					return true
				}
				sent += len(chunk)
				w.(http.Flusher).Flush()
			}
			return true
		})
		refuse(t, newClient(t, reg(f, srv.URL)), "1.0.0", registry.ErrSize)
		if sent >= len(data)+1024*32<<10 {
			t.Errorf("client read the whole oversized stream (%d bytes) instead of stopping", sent)
		}
	})
}

func TestAttackUnknownPublisherKey(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	_, rogue, _ := sign.Generate()
	f.Mutate(t, func(ix *index.Index) {
		v := &ix.Plugins[0].Versions[0]
		a := &v.Artifacts[0]
		a.Signatures = nil
		if err := index.SignArtifact(rogue, plugin, v, a); err != nil {
			t.Fatal(err)
		}
	})
	err := refuse(t, newClient(t, reg(f, f.Dir)), "1.0.0", registry.ErrSignature)
	t.Log(err)
}

func TestAttackIndexSignedByUnpinnedRoot(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	c := newClient(t, reg(f, f.Dir))
	// Someone who can write the registry replaces its root key (as an
	// installer trusting keys served by the registry would accept).
	_, rogue, _ := sign.Generate()
	f.Root = rogue
	f.Mutate(t, func(ix *index.Index) {})
	refuse(t, c, "1.0.0", registry.ErrSignature)
}

func TestAttackEditedIndexWithoutResign(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	editSignedIndex(t, f, `"Apache-2.0"`, `"MIT"`)
	err := refuse(t, newClient(t, reg(f, f.Dir)), "1.0.0", registry.ErrSignature)
	// Say what happened, not "signed by 0 of 1 keys (signatures by: the pinned key)".
	if !strings.Contains(err.Error(), "the index content was altered after signing") || strings.Contains(err.Error(), "0 of the 1") {
		t.Errorf("message for an edited index: %v", err)
	}
}

func TestAttackMixAndMatch(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0", "1.0.1")
	// Serve 1.0.0's artifact, with its valid signature, as 1.0.1.
	f.Mutate(t, func(ix *index.Index) {
		vs := ix.Plugins[0].Versions
		old := vs[0].Artifacts[0]
		old.Signatures = append([]index.Signature(nil), old.Signatures...)
		vs[1].Artifacts[0] = old
	})
	c := newClient(t, reg(f, f.Dir))
	refuse(t, c, "1.0.1", registry.ErrSignature)
	// And a range does not quietly fall back to 1.0.0 either.
	refuse(t, c, "^1", registry.ErrSignature)
}

func TestAttackRollback(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	p := filepath.Join(f.Dir, "index.json")
	old, _ := os.ReadFile(p)
	publishVersions(t, f, "1.0.1")
	srv := serve(t, f)
	c := newClient(t, reg(f, srv.URL))
	if _, err := c.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, old, 0o644) // replay the validly signed older index
	refuse(t, c, "^1", registry.ErrRollback)
}

func TestAttackExpiredIndex(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	c := newClient(t, reg(f, f.Dir))
	c.Now = func() time.Time { return time.Now().Add(40 * 24 * time.Hour) }
	refuse(t, c, "1.0.0", registry.ErrExpired)
}

func TestAttackExpiredDelegation(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	f.Mutate(t, func(ix *index.Index) {
		p := &ix.Publishers[0]
		p.Expires = time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		p.Signatures = nil
		if err := index.SignDelegation(f.Root, ix.Name, p); err != nil {
			t.Fatal(err)
		}
	})
	err := refuse(t, newClient(t, reg(f, f.Dir)), "1.0.0", registry.ErrSignature)
	if !errors.Is(err, registry.ErrExpired) {
		t.Errorf("expired delegation is not reported as expired: %v", err)
	}
}

func TestYankedVersion(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0", "1.0.1")
	if _, err := publishYank(f, "1.0.1"); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, reg(f, f.Dir))
	refuse(t, c, "1.0.1", registry.ErrYanked)
	// A range skips it.
	sel, _, err := c.Resolve(context.Background(), client.Request{Name: plugin, Constraint: "^1"})
	if err != nil || sel.Version.Version != "1.0.0" {
		t.Fatalf("range with yanked newest = %v, %v", sel, err)
	}
	// allow-yanked only helps an exact pin.
	if _, _, err := c.Resolve(context.Background(), client.Request{Name: plugin, Constraint: ">=1.0.1", AllowYanked: true}); !errors.Is(err, registry.ErrYanked) {
		t.Errorf("allow-yanked with a range: %v", err)
	}
	res, err := c.Install(context.Background(), client.Request{Name: plugin, Constraint: "1.0.1", AllowYanked: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Entry.Version != "1.0.1" || len(res.Notices) == 0 {
		t.Errorf("pinned yanked install: %+v", res)
	}
}

func TestProtocolIncompatible(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	f.Publish(t, regtest.BuildPlugin(t, regtest.Plugin{Name: plugin, Version: "1.0.0", Protocols: "2"}))
	err := refuse(t, newClient(t, reg(f, f.Dir)), "^1", registry.ErrIncompatible)
	t.Log(err)
}

func TestWrongPlatform(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	c := newClient(t, reg(f, f.Dir))
	c.OS, c.Arch = "plan9", "mips"
	refuse(t, c, "1.0.0", registry.ErrPlatform)
}

func TestPolicy(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	c := newClient(t, reg(f, f.Dir))
	c.Policy.AllowedLicenses = []string{"MIT"}
	refuse(t, c, "1.0.0", registry.ErrPolicy)
	c.Policy.AllowedLicenses = nil
	c.Policy.TrustedPublishers = []string{"0123456789abcdef"}
	refuse(t, c, "1.0.0", registry.ErrPolicy)
	f.Mutate(t, func(ix *index.Index) { ix.Plugins[0].Official = false })
	c.Policy.TrustedPublishers = nil
	c.Policy.OfficialOnly = true
	refuse(t, c, "1.0.0", registry.ErrPolicy)
}

// tarGz builds an archive; entries map names to content.
func tarGz(t *testing.T, entries []tarEntry) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o755, Size: int64(len(e.data)), Typeflag: tar.TypeReg}
		if e.link != "" {
			h = &tar.Header{Name: e.name, Linkname: e.link, Typeflag: tar.TypeSymlink, Mode: 0o777}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

type tarEntry struct {
	name, link string
	data       []byte
}

// publishArchive adds version v as a tar.gz artifact, properly signed by
// the registry's publisher.
func publishArchive(t *testing.T, f *regtest.Fixture, v string, archive []byte) {
	rel := "artifacts/" + plugin + "/" + v + "/" + plugin + ".tar.gz"
	p := filepath.Join(f.Dir, filepath.FromSlash(rel))
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, archive, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(archive)
	f.Mutate(t, func(ix *index.Index) {
		pl := ix.Lookup(plugin)
		pl.Versions = append(pl.Versions, index.Version{Version: v, ProtocolVersions: []int{1}, Artifacts: []index.Artifact{{
			OS: platformOS(), Arch: platformArch(), URL: rel, Size: int64(len(archive)), SHA256: hex.EncodeToString(sum[:]), Format: index.FormatTarGz,
		}}})
		nv := &pl.Versions[len(pl.Versions)-1]
		if err := index.SignArtifact(f.Publisher, plugin, nv, &nv.Artifacts[0]); err != nil {
			t.Fatal(err)
		}
	})
}

func TestArchiveArtifact(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	bin, _ := os.ReadFile(regtest.BuildPlugin(t, regtest.Plugin{Name: plugin, Version: "1.1.0"}))
	publishArchive(t, f, "1.1.0", tarGz(t, []tarEntry{{name: "README", data: []byte("hi")}, {name: plugin, data: bin}}))
	c := newClient(t, reg(f, serve(t, f).URL))
	res, err := c.Install(context.Background(), client.Request{Name: plugin, Constraint: "1.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	if got := describeVersion(t, res.Entry.Path); got != "1.1.0" {
		t.Errorf("archive install reports %s", got)
	}
	if res.Entry.SHA256 != sha256File(t, res.Entry.Path) {
		t.Errorf("lock records %s, not the executable's sha256", res.Entry.SHA256)
	}
	if _, err := c.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestAttackArchiveEscape(t *testing.T) {
	for name, entries := range map[string][]tarEntry{
		"dotdot":   {{name: "../../escaped", data: []byte("x")}, {name: plugin, data: []byte("x")}},
		"absolute": {{name: "/tmp/escaped-palvella", data: []byte("x")}},
		"symlink":  {{name: "link", link: "/etc"}, {name: "link/escaped", data: []byte("x")}},
		"nested":   {{name: "a/../../escaped", data: []byte("x")}},
	} {
		t.Run(name, func(t *testing.T) {
			f := regtest.NewRegistry(t, "acme")
			publishVersions(t, f, "1.0.0")
			publishArchive(t, f, "1.1.0", tarGz(t, entries))
			c := newClient(t, reg(f, f.Dir))
			refuse(t, c, "1.1.0", registry.ErrUnsafePath)
			for _, p := range []string{filepath.Join(filepath.Dir(c.PluginDir), "escaped"), filepath.Join(c.PluginDir, "escaped"), "/tmp/escaped-palvella"} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("archive wrote %s", p)
				}
			}
		})
	}
}
