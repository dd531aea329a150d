// Package echoplugin is a minimal credential plugin for benchmarks: the
// same implementation is called in-process and as a plugin process, so the
// difference is the cost of the plugin transport.
package echoplugin

import (
	"context"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/credential"
)

// Plugin answers Get with a fixed 64-byte value.
type Plugin struct{ value []byte }

// New returns the plugin.
func New() *Plugin {
	return &Plugin{value: []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")}
}

// Describe implements sdk.Plugin.
func (p *Plugin) Describe(context.Context) (*sdk.Manifest, error) {
	return &sdk.Manifest{Name: "echo", Version: "1.0.0"}, nil
}

// Configure implements sdk.Plugin.
func (p *Plugin) Configure(context.Context, *sdk.ConfigureRequest) (*sdk.ConfigureResponse, error) {
	return &sdk.ConfigureResponse{}, nil
}

// Get returns the fixed value under any name.
func (p *Plugin) Get(ctx context.Context, name string) (*credential.Secret, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &credential.Secret{Meta: credential.Meta{Name: name, Type: "Text"}, Data: map[string][]byte{"value": p.value}}, nil
}

// Put is not supported.
func (p *Plugin) Put(context.Context, *credential.PutRequest) (*credential.Meta, error) {
	return nil, sdk.ErrUnimplemented
}

// Delete is not supported.
func (p *Plugin) Delete(context.Context, string) error { return sdk.ErrUnimplemented }

// List returns nothing.
func (p *Plugin) List(context.Context, string) ([]credential.Meta, error) { return nil, nil }
