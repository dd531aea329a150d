package credential

import (
	"context"
	"fmt"

	goplugin "github.com/hashicorp/go-plugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
	credentialv1 "github.com/palvella/palvella/proto/palvella/credential/v1"
	"google.golang.org/grpc"
)

type grpcClient struct {
	*sdk.BaseClient
	client credentialv1.CredentialServiceClient
}

var _ Credential = (*grpcClient)(nil)

// NewClient returns a Credential that calls a plugin over conn.
func NewClient(broker *goplugin.GRPCBroker, conn *grpc.ClientConn) Credential {
	return &grpcClient{BaseClient: sdk.NewBaseClient(broker, conn), client: credentialv1.NewCredentialServiceClient(conn)}
}

func (c *grpcClient) Put(ctx context.Context, req *PutRequest) (*Meta, error) {
	resp, err := c.client.Put(ctx, &credentialv1.PutRequest{Credential: &credentialv1.Credential{
		Meta: &credentialv1.CredentialMeta{Name: req.Name, Type: req.Type, Labels: req.Labels},
		Data: req.Data,
	}})
	if err != nil {
		return nil, fmt.Errorf("put credential %q: %w", req.Name, sdk.FromGRPC(err))
	}
	m := metaFromProto(resp.GetMeta())
	return &m, nil
}

func (c *grpcClient) Get(ctx context.Context, name string) (*Secret, error) {
	resp, err := c.client.Get(ctx, &credentialv1.GetRequest{Name: name})
	if err != nil {
		return nil, fmt.Errorf("get credential %q: %w", name, sdk.FromGRPC(err))
	}
	cred := resp.GetCredential()
	if cred == nil {
		return nil, sdk.Errorf(sdk.ErrInternal, "credential", "plugin answered Get without a credential")
	}
	return &Secret{Meta: metaFromProto(cred.GetMeta()), Data: cred.GetData()}, nil
}

func (c *grpcClient) Delete(ctx context.Context, name string) error {
	if _, err := c.client.Delete(ctx, &credentialv1.DeleteRequest{Name: name}); err != nil {
		return fmt.Errorf("delete credential %q: %w", name, sdk.FromGRPC(err))
	}
	return nil
}

func (c *grpcClient) List(ctx context.Context, prefix string) ([]Meta, error) {
	resp, err := c.client.List(ctx, &credentialv1.ListRequest{Prefix: prefix})
	if err != nil {
		return nil, fmt.Errorf("list credentials: %w", sdk.FromGRPC(err))
	}
	out := make([]Meta, 0, len(resp.GetItems()))
	for _, m := range resp.GetItems() {
		out = append(out, metaFromProto(m))
	}
	return out, nil
}
