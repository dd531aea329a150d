package engine

import (
	"context"
	"errors"
	"fmt"
	"io"

	goplugin "github.com/hashicorp/go-plugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
	enginev1 "github.com/palvella/palvella/proto/palvella/engine/v1"
	"google.golang.org/grpc"
)

type grpcClient struct {
	*sdk.BaseClient
	client enginev1.EngineServiceClient
}

var _ Engine = (*grpcClient)(nil)

// NewClient returns an Engine that calls a plugin over conn.
func NewClient(broker *goplugin.GRPCBroker, conn *grpc.ClientConn) Engine {
	return &grpcClient{BaseClient: sdk.NewBaseClient(broker, conn), client: enginev1.NewEngineServiceClient(conn)}
}

func (c *grpcClient) Setup(ctx context.Context, req *SetupRequest) (*Workspace, error) {
	preq, err := setupToProto(req)
	if err != nil {
		return nil, fmt.Errorf("set up workspace for job %q: %w", req.Job, err)
	}
	resp, err := c.client.Setup(sdk.OutgoingExecution(ctx), preq)
	if err != nil {
		return nil, fmt.Errorf("set up workspace for job %q: %w", req.Job, sdk.FromGRPC(err))
	}
	if resp.GetWorkspaceId() == "" {
		return nil, sdk.Errorf(sdk.ErrInternal, "workspace_id", "plugin answered Setup without a workspace ID")
	}
	return &Workspace{ID: resp.GetWorkspaceId(), Workdir: resp.GetWorkdir()}, nil
}

func (c *grpcClient) Exec(ctx context.Context, req *ExecRequest, out func(stream string, data []byte) error) (*ExecResult, error) {
	// Ending the stream early (out failed) cancels the call, which stops the
	// command in the plugin.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.client.Exec(sdk.OutgoingExecution(ctx), execToProto(req))
	if err != nil {
		return nil, fmt.Errorf("exec in workspace %q: %w", req.WorkspaceID, sdk.FromGRPC(err))
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, sdk.Errorf(sdk.ErrInternal, "", "exec in workspace %q: plugin ended the stream without a result", req.WorkspaceID)
		}
		if err != nil {
			return nil, fmt.Errorf("exec in workspace %q: %w", req.WorkspaceID, sdk.FromGRPC(err))
		}
		switch e := ev.GetEvent().(type) {
		case *enginev1.ExecEvent_Output:
			if out == nil {
				continue
			}
			if err := out(e.Output.GetStream(), e.Output.GetData()); err != nil {
				return nil, fmt.Errorf("exec in workspace %q: handle output: %w", req.WorkspaceID, err)
			}
		case *enginev1.ExecEvent_Result:
			if e.Result == nil {
				return nil, sdk.Errorf(sdk.ErrInternal, "", "exec in workspace %q: plugin sent an empty result", req.WorkspaceID)
			}
			return resultFromProto(e.Result), nil
		}
	}
}

func (c *grpcClient) Cancel(ctx context.Context, workspaceID, execID string) error {
	if _, err := c.client.Cancel(sdk.OutgoingExecution(ctx), &enginev1.CancelRequest{WorkspaceId: workspaceID, ExecId: execID}); err != nil {
		return fmt.Errorf("cancel exec %q in workspace %q: %w", execID, workspaceID, sdk.FromGRPC(err))
	}
	return nil
}

func (c *grpcClient) Teardown(ctx context.Context, workspaceID string) error {
	if _, err := c.client.Teardown(sdk.OutgoingExecution(ctx), &enginev1.TeardownRequest{WorkspaceId: workspaceID}); err != nil {
		return fmt.Errorf("tear down workspace %q: %w", workspaceID, sdk.FromGRPC(err))
	}
	return nil
}
