package archive_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/internal/archive"
)

func tgz(t testing.TB, hdrs ...*tar.Header) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, h := range hdrs {
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestExtract(t *testing.T) {
	dest := t.TempDir()
	err := archive.Extract(bytes.NewReader(tgz(t,
		&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "bin/tool", Size: 3, Mode: 0o755},
		&tar.Header{Name: "docs/README", Size: 2, Mode: 0o600},
	)), dest, archive.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dest, "bin", "tool"))
	if err != nil || st.Mode().Perm() != 0o755 || st.Size() != 3 {
		t.Errorf("bin/tool: %v %v", st, err)
	}
}

func TestExtractRefuses(t *testing.T) {
	cases := map[string]struct {
		hdrs []*tar.Header
		lim  archive.Limits
		kind error
	}{
		"dotdot":    {[]*tar.Header{{Name: "../x", Size: 1}}, archive.Limits{}, registry.ErrUnsafePath},
		"absolute":  {[]*tar.Header{{Name: "/x", Size: 1}}, archive.Limits{}, registry.ErrUnsafePath},
		"hidden up": {[]*tar.Header{{Name: "a/b/../../../x", Size: 1}}, archive.Limits{}, registry.ErrUnsafePath},
		"symlink":   {[]*tar.Header{{Name: "l", Linkname: "/", Typeflag: tar.TypeSymlink}}, archive.Limits{}, registry.ErrUnsafePath},
		"hardlink":  {[]*tar.Header{{Name: "l", Linkname: "/etc/passwd", Typeflag: tar.TypeLink}}, archive.Limits{}, registry.ErrUnsafePath},
		"device":    {[]*tar.Header{{Name: "d", Typeflag: tar.TypeChar}}, archive.Limits{}, registry.ErrUnsafePath},
		"too many":  {[]*tar.Header{{Name: "a", Size: 1}, {Name: "b", Size: 1}}, archive.Limits{MaxFiles: 1}, registry.ErrInvalidArgument},
		"too big":   {[]*tar.Header{{Name: "a", Size: 10}}, archive.Limits{MaxBytes: 5}, registry.ErrInvalidArgument},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "dest")
			os.Mkdir(dest, 0o755)
			err := archive.Extract(bytes.NewReader(tgz(t, c.hdrs...)), dest, c.lim)
			if !errors.Is(err, c.kind) {
				t.Fatalf("got %v, want %v", err, c.kind)
			}
			if _, err := os.Stat(filepath.Join(parent, "x")); err == nil {
				t.Error("wrote outside the target")
			}
		})
	}
	if err := archive.Extract(strings.NewReader("not gzip"), t.TempDir(), archive.Limits{}); !errors.Is(err, registry.ErrInvalidArgument) {
		t.Errorf("garbage: %v", err)
	}
}

func FuzzSafeName(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../a", "/a", "a/../b", "a/./b", "", ".", "a\\..\\b", "a/b/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		clean, err := archive.SafeName(name)
		if err != nil {
			return
		}
		// Whatever is accepted stays inside a base directory.
		base := "/base"
		joined := filepath.Join(base, filepath.FromSlash(clean))
		if joined != base && !strings.HasPrefix(joined, base+"/") {
			t.Fatalf("SafeName(%q) = %q escapes to %q", name, clean, joined)
		}
	})
}
