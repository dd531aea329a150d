package client_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/palvella/palvella/registry/index"
	"github.com/palvella/palvella/registry/internal/regtest"
	"github.com/palvella/palvella/registry/publish"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func sha256File(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func itoa(n int) string { return strconv.Itoa(n) }

func platformOS() string   { return runtime.GOOS }
func platformArch() string { return runtime.GOARCH }

func publishYank(f *regtest.Fixture, v string) (*index.Index, error) {
	return publish.Yank(f.Dir, plugin, v, "crashes on start", f.Opts)
}
