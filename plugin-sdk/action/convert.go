package action

import (
	"encoding/json"
	"fmt"

	sdk "github.com/palvella/palvella/plugin-sdk"
	actionv1 "github.com/palvella/palvella/proto/palvella/action/v1"
	"google.golang.org/protobuf/types/known/structpb"
)

// jsonLike returns v as a value structpb accepts: nil, bool, numbers,
// string, []any and map[string]any. Other values (typed slices and maps,
// structs) go through a JSON round trip.
func jsonLike(v any) (any, error) {
	switch v.(type) {
	case nil, bool, string, int, int32, int64, uint32, uint64, float32, float64:
		return v, nil
	case map[string]any:
		m := v.(map[string]any)
		out := make(map[string]any, len(m))
		for k, e := range m {
			c, err := jsonLike(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = c
		}
		return out, nil
	case []any:
		l := v.([]any)
		out := make([]any, len(l))
		for i, e := range l {
			c, err := jsonLike(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = c
		}
		return out, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%T is not JSON-like: %w", v, err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%T is not JSON-like: %w", v, err)
	}
	return out, nil
}

// valueToProto converts one output value for the wire.
func valueToProto(v any, field string) (*structpb.Value, error) {
	c, err := jsonLike(v)
	if err == nil {
		var pv *structpb.Value
		if pv, err = structpb.NewValue(c); err == nil {
			return pv, nil
		}
	}
	return nil, sdk.Errorf(sdk.ErrInvalidArgument, field, "cannot be sent over the wire: %v", err)
}

// mapToProto converts a JSON-like map for the wire.
func mapToProto(m map[string]any, field string) (*structpb.Struct, error) {
	if m == nil {
		return nil, nil
	}
	c, err := jsonLike(m)
	if err != nil {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, field, "cannot be sent over the wire: %v", err)
	}
	return sdk.StructToProto(c.(map[string]any), field)
}

func refToProto(r sdk.ExecutionRef) *actionv1.ExecutionRef {
	return &actionv1.ExecutionRef{Namespace: r.Namespace, Pipeline: r.Pipeline, Run: r.Run, Job: r.Job, Action: r.Action, Attempt: int32(r.Attempt)}
}

func refFromProto(r *actionv1.ExecutionRef) sdk.ExecutionRef {
	return sdk.ExecutionRef{Namespace: r.GetNamespace(), Pipeline: r.GetPipeline(), Run: r.GetRun(), Job: r.GetJob(), Action: r.GetAction(), Attempt: int(r.GetAttempt())}
}

func requestToProto(req *RunRequest) (*actionv1.RunRequest, error) {
	params, err := mapToProto(req.Params, "params")
	if err != nil {
		return nil, err
	}
	ctxs, err := mapToProto(req.Context, "context")
	if err != nil {
		return nil, err
	}
	return &actionv1.RunRequest{Type: req.Type, Name: req.Name, Params: params, Context: ctxs, Ref: refToProto(req.Ref)}, nil
}

func requestFromProto(req *actionv1.RunRequest) *RunRequest {
	return &RunRequest{
		Type: req.GetType(), Name: req.GetName(),
		Params: sdk.StructFromProto(req.GetParams()), Context: sdk.StructFromProto(req.GetContext()),
		Ref: refFromProto(req.GetRef()),
	}
}

func resultToProto(r *Result) (*actionv1.Result, error) {
	outputs, err := mapToProto(r.Outputs, "outputs")
	if err != nil {
		return nil, err
	}
	return &actionv1.Result{Status: actionv1.Status(r.Status), Message: r.Message, Outputs: outputs}, nil
}

func resultFromProto(r *actionv1.Result) *Result {
	return &Result{Status: Status(r.GetStatus()), Message: r.GetMessage(), Outputs: sdk.StructFromProto(r.GetOutputs())}
}
