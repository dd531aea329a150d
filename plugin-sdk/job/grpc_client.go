package job

import (
	"context"
	"fmt"

	goplugin "github.com/hashicorp/go-plugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
	jobv1 "github.com/palvella/palvella/proto/palvella/job/v1"
	"google.golang.org/grpc"
)

type grpcClient struct {
	*sdk.BaseClient
	client jobv1.JobServiceClient
}

var _ Job = (*grpcClient)(nil)

// NewClient returns a Job that calls a plugin over conn.
func NewClient(broker *goplugin.GRPCBroker, conn *grpc.ClientConn) Job {
	return &grpcClient{BaseClient: sdk.NewBaseClient(broker, conn), client: jobv1.NewJobServiceClient(conn)}
}

func (c *grpcClient) listTypes(ctx context.Context) ([]sdk.TypeInfo, error) {
	resp, err := c.client.ListTypes(ctx, &jobv1.ListTypesRequest{})
	if err != nil {
		return nil, fmt.Errorf("list job types: %w", sdk.FromGRPC(err))
	}
	return sdk.TypeInfosFromProto(resp.GetTypes()), nil
}

func (c *grpcClient) Expand(ctx context.Context, req *ExpandRequest) (*ExpandResponse, error) {
	preq, err := requestToProto(req)
	if err != nil {
		return nil, fmt.Errorf("expand job %q: %w", req.JobName, err)
	}
	resp, err := c.client.Expand(ctx, preq)
	if err != nil {
		return nil, fmt.Errorf("expand job %q: %w", req.JobName, sdk.FromGRPC(err))
	}
	return responseFromProto(resp), nil
}
