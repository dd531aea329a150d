package engine

import (
	"context"
	"sync"

	sdk "github.com/palvella/palvella/plugin-sdk"
	enginev1 "github.com/palvella/palvella/proto/palvella/engine/v1"
	"google.golang.org/grpc"
)

type grpcServer struct {
	enginev1.UnimplementedEngineServiceServer
	impl Engine
}

func (s *grpcServer) Setup(ctx context.Context, req *enginev1.SetupRequest) (*enginev1.SetupResponse, error) {
	ws, err := s.impl.Setup(sdk.IncomingExecution(ctx), setupFromProto(req))
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	return &enginev1.SetupResponse{WorkspaceId: ws.ID, Workdir: ws.Workdir}, nil
}

// Exec runs the command with the stream's context, so a caller that goes
// away (or cancels) stops the command.
func (s *grpcServer) Exec(req *enginev1.ExecRequest, stream grpc.ServerStreamingServer[enginev1.ExecEvent]) error {
	ctx := sdk.IncomingExecution(stream.Context())
	var mu sync.Mutex // Send is not safe for concurrent use; guard against a careless implementation
	res, err := s.impl.Exec(ctx, execFromProto(req), func(name string, data []byte) error {
		mu.Lock()
		defer mu.Unlock()
		return stream.Send(&enginev1.ExecEvent{Event: &enginev1.ExecEvent_Output{Output: &enginev1.OutputChunk{Stream: name, Data: data}}})
	})
	if err != nil {
		return sdk.ToGRPC(err)
	}
	if res == nil {
		return sdk.ToGRPC(sdk.Errorf(sdk.ErrInternal, "", "engine returned neither a result nor an error"))
	}
	mu.Lock()
	defer mu.Unlock()
	return stream.Send(&enginev1.ExecEvent{Event: &enginev1.ExecEvent_Result{Result: resultToProto(res)}})
}

func (s *grpcServer) Cancel(ctx context.Context, req *enginev1.CancelRequest) (*enginev1.CancelResponse, error) {
	if err := s.impl.Cancel(sdk.IncomingExecution(ctx), req.GetWorkspaceId(), req.GetExecId()); err != nil {
		return nil, sdk.ToGRPC(err)
	}
	return &enginev1.CancelResponse{}, nil
}

func (s *grpcServer) Teardown(ctx context.Context, req *enginev1.TeardownRequest) (*enginev1.TeardownResponse, error) {
	if err := s.impl.Teardown(sdk.IncomingExecution(ctx), req.GetWorkspaceId()); err != nil {
		return nil, sdk.ToGRPC(err)
	}
	return &enginev1.TeardownResponse{}, nil
}
