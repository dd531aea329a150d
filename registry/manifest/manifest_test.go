package manifest_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/manifest"
)

func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "plugin")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRead(t *testing.T) {
	p := script(t, `[ "$1" = --describe ] || exit 3
echo '{"name":"engine-sh","version":"0.1.0","categories":["engine"],"protocolVersions":[1],"configSchema":{"type":"object"}}'`)
	m, err := manifest.Read(context.Background(), p, 0)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "engine-sh" || m.Version != "0.1.0" || m.ProtocolVersions[0] != 1 || len(m.ConfigSchema) == 0 {
		t.Errorf("manifest %+v", m)
	}
}

func TestReadRefuses(t *testing.T) {
	for name, body := range map[string]string{
		"fails":       "echo boom >&2; exit 1",
		"not json":    "echo hello",
		"no name":     `echo '{"version":"1.0.0","categories":["engine"],"protocolVersions":[1]}'`,
		"no protocol": `echo '{"name":"x","version":"1.0.0","categories":["engine"],"protocolVersions":[]}'`,
		"floods":      "yes aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"hangs":       "exec sleep 30",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := manifest.Read(context.Background(), script(t, body), 500*time.Millisecond)
			if !errors.Is(err, registry.ErrInvalidArgument) {
				t.Errorf("got %v", err)
			}
		})
	}
}
