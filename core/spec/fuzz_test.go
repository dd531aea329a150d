package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input makes the parser panic, and that a
// pipeline it accepts survives a trip through its canonical JSON
// unchanged.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(hashYAML))
	f.Add([]byte(hashJSON))
	f.Add([]byte("a: &a [*a]"))
	f.Add([]byte("x: &x {y: 1}\nz: {<<: *x, w: 2}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		_ = p.Validate(Options{})
		// With the types' schemas, as a server validates.
		_ = p.Validate(knownTypes)
		first, err := p.CanonicalJSON()
		if err != nil {
			t.Fatalf("encode accepted pipeline: %v", err)
		}
		q, err := Parse("fuzz.json", first)
		if err != nil {
			t.Fatalf("canonical JSON of an accepted pipeline is rejected: %v\n%s", err, first)
		}
		second, err := q.CanonicalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second) || p.Hash() != q.Hash() {
			t.Fatalf("round trip changed the pipeline:\n%s\n%s", first, second)
		}
	})
}
