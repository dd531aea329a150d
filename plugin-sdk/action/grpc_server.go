package action

import (
	"context"
	"fmt"
	"sync"

	sdk "github.com/palvella/palvella/plugin-sdk"
	actionv1 "github.com/palvella/palvella/proto/palvella/action/v1"
	"google.golang.org/grpc"
)

type grpcServer struct {
	actionv1.UnimplementedActionServiceServer
	impl Action
}

// ListTypes answers from the plugin's manifest, so a plugin lists its types
// in one place.
func (s *grpcServer) ListTypes(ctx context.Context, _ *actionv1.ListTypesRequest) (*actionv1.ListTypesResponse, error) {
	m, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, sdk.ToGRPC(fmt.Errorf("list action types: %w", err))
	}
	out := &actionv1.ListTypesResponse{}
	for i, t := range m.TypesOf(sdk.CategoryAction) {
		pt, err := sdk.TypeInfoToProto(t)
		if err != nil {
			return nil, sdk.ToGRPC(fmt.Errorf("list action types: types[%d]: %w", i, err))
		}
		out.Types = append(out.Types, pt)
	}
	return out, nil
}

func (s *grpcServer) Run(req *actionv1.RunRequest, stream grpc.ServerStreamingServer[actionv1.RunEvent]) error {
	r := requestFromProto(req)
	ctx := sdk.WithExecution(stream.Context(), r.Ref)
	ev := &streamEvents{stream: stream}
	res, err := s.impl.Run(ctx, r, ev)
	if err != nil {
		return sdk.ToGRPC(err)
	}
	if sendErr := ev.failed(); sendErr != nil {
		return sendErr
	}
	if res == nil {
		return sdk.ToGRPC(sdk.Errorf(sdk.ErrInternal, "result", "action %q returned neither a result nor an error", r.Name))
	}
	if !res.Status.Valid() {
		return sdk.ToGRPC(sdk.Errorf(sdk.ErrInternal, "result.status", "action %q ended with invalid status %s", r.Name, res.Status))
	}
	pr, err := resultToProto(res)
	if err != nil {
		return sdk.ToGRPC(fmt.Errorf("send result of action %q: %w", r.Name, err))
	}
	return stream.Send(&actionv1.RunEvent{Event: &actionv1.RunEvent_Result{Result: pr}})
}

// streamEvents sends events on the Run stream. gRPC streams do not allow
// concurrent sends, hence the lock.
type streamEvents struct {
	stream grpc.ServerStreamingServer[actionv1.RunEvent]
	mu     sync.Mutex
	err    error
}

func (e *streamEvents) send(ev *actionv1.RunEvent) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return e.err
	}
	if err := e.stream.Send(ev); err != nil {
		e.err = err
		return sdk.FromGRPC(err)
	}
	return nil
}

func (e *streamEvents) failed() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

func (e *streamEvents) Log(stream, text string) error {
	return e.send(&actionv1.RunEvent{Event: &actionv1.RunEvent_Log{Log: &actionv1.LogLine{Stream: stream, Text: text}}})
}

func (e *streamEvents) Output(key string, value any) error {
	if key == "" {
		return sdk.Errorf(sdk.ErrInvalidArgument, "outputs", "an output needs a key")
	}
	v, err := valueToProto(value, "outputs."+key)
	if err != nil {
		return err
	}
	return e.send(&actionv1.RunEvent{Event: &actionv1.RunEvent_Output{Output: &actionv1.Output{Key: key, Value: v}}})
}
