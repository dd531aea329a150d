// Package credential is the contract of credential plugins: named
// credentials {name, type, data} that can be put, read, deleted and listed.
// Values are secrets: an implementation never logs them and never returns
// them from List.
package credential

import (
	"context"

	goplugin "github.com/hashicorp/go-plugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/types"
	credentialv1 "github.com/palvella/palvella/proto/palvella/credential/v1"
	"google.golang.org/grpc"
)

// Credential is implemented by credential plugins.
type Credential interface {
	sdk.Plugin
	// Put creates or replaces a credential.
	Put(ctx context.Context, req *PutRequest) (*Meta, error)
	// Get returns a credential with its values, or sdk.ErrNotFound.
	Get(ctx context.Context, name string) (*Secret, error)
	// Delete removes a credential, or returns sdk.ErrNotFound.
	Delete(ctx context.Context, name string) error
	// List returns the metadata of the credentials whose names start with
	// prefix, sorted by name.
	List(ctx context.Context, prefix string) ([]Meta, error)
}

// Meta is what may be shown of a credential.
type Meta = types.CredentialMeta

// Secret is a credential with its values.
type Secret struct {
	Meta Meta
	// Data holds the values; "value" is the conventional key of a
	// single-value credential.
	Data map[string][]byte
}

// PutRequest creates or replaces a credential.
type PutRequest struct {
	Name   string
	Type   string
	Labels map[string]string
	Data   map[string][]byte
}

// GRPCPlugin is the go-plugin plugin of this category. Impl is set on the
// plugin side only.
type GRPCPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	Impl Credential
}

var _ goplugin.GRPCPlugin = (*GRPCPlugin)(nil)

// Service registers impl as the plugin's credential service, for sdk.Serve.
func Service(impl Credential) sdk.Service {
	return sdk.Service{Category: sdk.CategoryCredential, Plugin: &GRPCPlugin{Impl: impl}}
}

// GRPCServer registers the credential service.
func (p *GRPCPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	credentialv1.RegisterCredentialServiceServer(s, &grpcServer{impl: p.Impl})
	return nil
}

// GRPCClient returns a Credential that calls the plugin.
func (p *GRPCPlugin) GRPCClient(_ context.Context, broker *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewClient(broker, c), nil
}
