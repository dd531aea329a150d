package action

import (
	"context"
	"errors"
	"fmt"
	"io"

	goplugin "github.com/hashicorp/go-plugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
	actionv1 "github.com/palvella/palvella/proto/palvella/action/v1"
	"google.golang.org/grpc"
)

type grpcClient struct {
	*sdk.BaseClient
	client actionv1.ActionServiceClient
}

var _ Action = (*grpcClient)(nil)

// NewClient returns an Action that calls a plugin over conn.
func NewClient(broker *goplugin.GRPCBroker, conn *grpc.ClientConn) Action {
	return &grpcClient{BaseClient: sdk.NewBaseClient(broker, conn), client: actionv1.NewActionServiceClient(conn)}
}

func (c *grpcClient) listTypes(ctx context.Context) ([]sdk.TypeInfo, error) {
	resp, err := c.client.ListTypes(ctx, &actionv1.ListTypesRequest{})
	if err != nil {
		return nil, fmt.Errorf("list action types: %w", sdk.FromGRPC(err))
	}
	return sdk.TypeInfosFromProto(resp.GetTypes()), nil
}

// Run relays the plugin's events to events and returns its result. Outputs
// the plugin sent as events and did not repeat in the result are merged in.
func (c *grpcClient) Run(ctx context.Context, req *RunRequest, events Events) (*Result, error) {
	if events == nil {
		events = Discard
	}
	preq, err := requestToProto(req)
	if err != nil {
		return nil, fmt.Errorf("run action %q: %w", req.Name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.client.Run(ctx, preq)
	if err != nil {
		return nil, fmt.Errorf("run action %q: %w", req.Name, sdk.FromGRPC(err))
	}
	streamed := map[string]any{}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("run action %q: %w", req.Name, sdk.Errorf(sdk.ErrInternal, "result", "the plugin ended the run without a result"))
		}
		if err != nil {
			return nil, fmt.Errorf("run action %q: %w", req.Name, sdk.FromGRPC(err))
		}
		switch e := ev.GetEvent().(type) {
		case *actionv1.RunEvent_Log:
			if err := events.Log(e.Log.GetStream(), e.Log.GetText()); err != nil {
				return nil, fmt.Errorf("run action %q: record log line: %w", req.Name, err)
			}
		case *actionv1.RunEvent_Output:
			key, value := e.Output.GetKey(), e.Output.GetValue().AsInterface()
			streamed[key] = value
			if err := events.Output(key, value); err != nil {
				return nil, fmt.Errorf("run action %q: record output %q: %w", req.Name, key, err)
			}
		case *actionv1.RunEvent_Result:
			res := resultFromProto(e.Result)
			if !res.Status.Valid() {
				return nil, fmt.Errorf("run action %q: %w", req.Name, sdk.Errorf(sdk.ErrInternal, "result.status", "the plugin ended the run with invalid status %s", res.Status))
			}
			for k, v := range streamed {
				if _, ok := res.Outputs[k]; !ok {
					if res.Outputs == nil {
						res.Outputs = map[string]any{}
					}
					res.Outputs[k] = v
				}
			}
			return res, nil
		}
	}
}
