package sdktest

import (
	"context"
	"errors"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

// checkManifest asserts what every plugin's manifest must say.
func checkManifest(t *testing.T, p sdk.Plugin, want sdk.Category) *sdk.Manifest {
	t.Helper()
	m, err := p.Describe(context.Background())
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	// What Serve adds to every manifest, for plugins called in-process.
	sdk.CompleteManifest(m, want)
	if m.Name == "" {
		t.Errorf("manifest has no name")
	}
	if m.Version == "" {
		t.Errorf("manifest has no version")
	}
	if !m.Provides(want) {
		t.Errorf("manifest categories %v do not include %s", m.Categories, want)
	}
	if len(m.ProtocolVersions) == 0 {
		t.Errorf("manifest lists no protocol versions")
	}
	return m
}

// assertInvalid asserts err is an sdk.ErrInvalidArgument about field.
func assertInvalid(t *testing.T, what string, err error, field string) {
	t.Helper()
	if !errors.Is(err, sdk.ErrInvalidArgument) {
		t.Errorf("%s: error = %v, want sdk.ErrInvalidArgument", what, err)
		return
	}
	var typed *sdk.Error
	if field != "" && (!errors.As(err, &typed) || typed.Field != field) {
		t.Errorf("%s: error %v does not name the field %q", what, err, field)
	}
}

// assertCancelled asserts err reports a cancelled context.
func assertCancelled(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("call with a cancelled context: error = %v, want context.Canceled", err)
	}
}
