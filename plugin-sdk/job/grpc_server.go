package job

import (
	"context"
	"fmt"

	sdk "github.com/palvella/palvella/plugin-sdk"
	jobv1 "github.com/palvella/palvella/proto/palvella/job/v1"
)

type grpcServer struct {
	jobv1.UnimplementedJobServiceServer
	impl Job
}

// ListTypes answers from the plugin's manifest, so a plugin lists its types
// in one place.
func (s *grpcServer) ListTypes(ctx context.Context, _ *jobv1.ListTypesRequest) (*jobv1.ListTypesResponse, error) {
	m, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, sdk.ToGRPC(fmt.Errorf("list job types: %w", err))
	}
	out := &jobv1.ListTypesResponse{}
	for i, t := range m.TypesOf(sdk.CategoryJob) {
		pt, err := sdk.TypeInfoToProto(t)
		if err != nil {
			return nil, sdk.ToGRPC(fmt.Errorf("list job types: types[%d]: %w", i, err))
		}
		out.Types = append(out.Types, pt)
	}
	return out, nil
}

func (s *grpcServer) Expand(ctx context.Context, req *jobv1.ExpandRequest) (*jobv1.ExpandResponse, error) {
	r := requestFromProto(req)
	resp, err := s.impl.Expand(ctx, r)
	if err != nil {
		return nil, sdk.ToGRPC(err)
	}
	if resp == nil {
		return nil, sdk.ToGRPC(sdk.Errorf(sdk.ErrInternal, "", "expand job %q: the plugin returned neither a response nor an error", r.JobName))
	}
	out, err := responseToProto(resp)
	if err != nil {
		return nil, sdk.ToGRPC(fmt.Errorf("expand job %q: %w", r.JobName, err))
	}
	return out, nil
}
