package registry_test

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/palvella/palvella/registry"
)

func TestErrorIsUnwrapAndMessage(t *testing.T) {
	err := fmt.Errorf("install engine-x@^1: %w", &registry.Error{
		Kind: registry.ErrChecksum, Registry: "acme", Plugin: "engine-x", Version: "1.0.0",
		Field: "artifacts/x", Detail: "sha256 differs", Hint: "retry", Err: io.ErrUnexpectedEOF,
	})
	if !errors.Is(err, registry.ErrChecksum) || errors.Is(err, registry.ErrSignature) {
		t.Error("Is does not follow Kind")
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Error("Unwrap does not reach the cause")
	}
	var re *registry.Error
	if !errors.As(err, &re) || re.Plugin != "engine-x" {
		t.Error("As")
	}
	want := "install engine-x@^1: registry: checksum mismatch: registry acme: plugin engine-x@1.0.0: artifacts/x: sha256 differs: unexpected EOF (retry)"
	if err.Error() != want {
		t.Errorf("message\n got %s\nwant %s", err, want)
	}
}
