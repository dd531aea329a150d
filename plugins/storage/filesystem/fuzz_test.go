package filesystem

import (
	"path"
	"strings"
	"testing"

	"github.com/palvella/palvella/plugin-sdk/storage"
)

// FuzzObjectPaths checks that whatever key and scope part a caller sends,
// an accepted one maps to a path inside its scope's folder and nowhere else.
func FuzzObjectPaths(f *testing.F) {
	for _, seed := range [][2]string{
		{"logs/build.log", "r1"}, {"../x", "r1"}, {"/etc/passwd", "r1"}, {"a/../../b", "r1"},
		{"", "r1"}, {"a//b", ".."}, {`a\b`, "r/2"}, {"./a", "."}, {"a/.", "\x00"}, {"ü/€", "run-ü"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, key, run string) {
		scope := storage.Scope{Kind: storage.ScopeRun, Namespace: "ns", Pipeline: "p", Run: run}
		data, sum, err := objectPaths(storage.ObjectRef{Scope: scope, Key: key})
		if err != nil {
			return
		}
		dir := scopeDir(scope)
		if !strings.HasPrefix(data, "objects/run/ns/p/") || !strings.HasPrefix(data, dir+"/") {
			t.Fatalf("key %q, run %q: path %q is outside the scope folder %q", key, run, data, dir)
		}
		if path.Clean(data) != data || strings.Contains(data, "\\") {
			t.Fatalf("key %q, run %q: path %q is not clean", key, run, data)
		}
		if strings.TrimPrefix(data, dir+"/") != key {
			t.Fatalf("key %q, run %q: path %q does not end with the key", key, run, data)
		}
		if strings.Count(dir, "/") != 4 {
			t.Fatalf("run %q: scope folder %q has the wrong depth", run, dir)
		}
		if sum != "sums"+strings.TrimPrefix(data, "objects") {
			t.Fatalf("checksum path %q does not mirror %q", sum, data)
		}
	})
}

// FuzzDecodePageToken checks that a page token from the caller either is
// refused or names a valid key, which List only compares against.
func FuzzDecodePageToken(f *testing.F) {
	f.Add(encodePageToken("logs/a.log"))
	f.Add("not a token")
	f.Add(encodePageToken("../x"))
	f.Fuzz(func(t *testing.T, tok string) {
		key, err := decodePageToken(tok)
		if err != nil {
			return
		}
		if storage.ValidateKey(key) != nil {
			t.Fatalf("token %q was accepted with the invalid key %q", tok, key)
		}
	})
}
