package action_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/action"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
)

// fake is an action plugin made of a function field.
type fake struct {
	run func(ctx context.Context, req *action.RunRequest, events action.Events) (*action.Result, error)
}

func (f *fake) Describe(context.Context) (*sdk.Manifest, error) {
	return &sdk.Manifest{Name: "fake", Version: "0.0.1", Categories: []sdk.Category{sdk.CategoryAction}, ProtocolVersions: sdk.ProtocolVersions,
		Types: []sdk.TypeInfo{{Category: sdk.CategoryAction, Name: "t"}}}, nil
}

func (f *fake) Configure(context.Context, *sdk.ConfigureRequest) (*sdk.ConfigureResponse, error) {
	return &sdk.ConfigureResponse{}, nil
}

func (f *fake) Run(ctx context.Context, req *action.RunRequest, events action.Events) (*action.Result, error) {
	return f.run(ctx, req, events)
}

func TestStatusNames(t *testing.T) {
	for _, s := range []action.Status{action.StatusSuccess, action.StatusFailure, action.StatusWaiting, action.StatusSkipped, action.StatusCancelled} {
		got, err := action.ParseStatus(s.String())
		if err != nil || got != s {
			t.Errorf("ParseStatus(%q) = %v, %v", s, got, err)
		}
		b, _ := json.Marshal(s)
		var back action.Status
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Errorf("JSON round trip of %s gave %v, %v", s, back, err)
		}
	}
	if _, err := action.ParseStatus("done"); !errors.Is(err, sdk.ErrInvalidArgument) {
		t.Errorf("ParseStatus(done) error = %v, want ErrInvalidArgument", err)
	}
	if action.StatusUnspecified.Valid() || action.Status(42).Valid() {
		t.Errorf("unspecified and unknown statuses must not be valid")
	}
}

func TestRunOverGRPC(t *testing.T) {
	var gotRef sdk.ExecutionRef
	impl := &fake{run: func(ctx context.Context, req *action.RunRequest, events action.Events) (*action.Result, error) {
		gotRef, _ = sdk.ExecutionFrom(ctx)
		if err := events.Log("stdout", "hello"); err != nil {
			return nil, err
		}
		// Typed values become JSON-like; an output sent only as an event
		// still reaches the result.
		if err := events.Output("groups", []string{"a=1", "1"}); err != nil {
			return nil, err
		}
		if err := events.Output("only_streamed", map[string]int{"n": 2}); err != nil {
			return nil, err
		}
		return &action.Result{Status: action.StatusSuccess, Message: req.Params["m"].(string), Outputs: map[string]any{"groups": []string{"a=1", "1"}}}, nil
	}}
	client := sdktest.OverGRPC[action.Action](t, impl, action.Service)
	ref := sdk.ExecutionRef{Namespace: "ns", Pipeline: "p", Run: "r", Job: "j", Action: "a", Attempt: 3}
	rec := &sdktest.Recorder{}
	res, err := client.Run(context.Background(), &action.RunRequest{Type: "t", Name: "a", Params: map[string]any{"m": "ok"}, Context: map[string]any{"params": map[string]any{}}, Ref: ref}, rec)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if gotRef != ref {
		t.Errorf("the plugin's ctx carried %+v, want %+v", gotRef, ref)
	}
	groups, _ := res.Outputs["groups"].([]any)
	if res.Status != action.StatusSuccess || res.Message != "ok" || len(groups) != 2 || groups[1] != "1" {
		t.Errorf("result = %+v", res)
	}
	if n, _ := res.Outputs["only_streamed"].(map[string]any); n["n"] != 2.0 {
		t.Errorf("streamed-only output missing from the result: %v", res.Outputs)
	}
	if lines := rec.Lines(); len(lines) != 1 || lines[0] != (sdktest.LogLine{Stream: "stdout", Text: "hello"}) {
		t.Errorf("log lines = %v", lines)
	}
	types, err := action.ListTypes(context.Background(), client)
	if err != nil || len(types) != 1 || types[0].Name != "t" {
		t.Errorf("ListTypes = %v, %v", types, err)
	}
}

func TestInvalidResultsAreErrors(t *testing.T) {
	for name, run := range map[string]func(context.Context, *action.RunRequest, action.Events) (*action.Result, error){
		"no status": func(context.Context, *action.RunRequest, action.Events) (*action.Result, error) {
			return &action.Result{}, nil
		},
		"nil result": func(context.Context, *action.RunRequest, action.Events) (*action.Result, error) { return nil, nil },
	} {
		client := sdktest.OverGRPC[action.Action](t, &fake{run: run}, action.Service)
		_, err := client.Run(context.Background(), &action.RunRequest{Type: "t", Name: "a"}, nil)
		if !errors.Is(err, sdk.ErrInternal) {
			t.Errorf("%s: error = %v, want ErrInternal", name, err)
		}
	}
	client := sdktest.OverGRPC[action.Action](t, &fake{run: func(context.Context, *action.RunRequest, action.Events) (*action.Result, error) {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "params.x", "bad")
	}}, action.Service)
	_, err := client.Run(context.Background(), &action.RunRequest{Type: "t", Name: "a"}, nil)
	var typed *sdk.Error
	if !errors.As(err, &typed) || typed.Field != "params.x" || !errors.Is(err, sdk.ErrInvalidArgument) {
		t.Errorf("error = %v, want ErrInvalidArgument about params.x across the wire", err)
	}
}
