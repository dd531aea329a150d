package job_test

import (
	"context"
	"reflect"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/job"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
)

type fake struct {
	expand func(ctx context.Context, req *job.ExpandRequest) (*job.ExpandResponse, error)
}

func (f *fake) Describe(context.Context) (*sdk.Manifest, error) {
	return &sdk.Manifest{Name: "fake", Version: "0.0.1", Categories: []sdk.Category{sdk.CategoryJob}, ProtocolVersions: sdk.ProtocolVersions,
		Types: []sdk.TypeInfo{{Category: sdk.CategoryJob, Name: "deploy"}, {Category: sdk.CategoryAction, Name: "not-a-job"}}}, nil
}

func (f *fake) Configure(context.Context, *sdk.ConfigureRequest) (*sdk.ConfigureResponse, error) {
	return &sdk.ConfigureResponse{}, nil
}

func (f *fake) Expand(ctx context.Context, req *job.ExpandRequest) (*job.ExpandResponse, error) {
	return f.expand(ctx, req)
}

func TestExpandOverGRPC(t *testing.T) {
	want := &job.ExpandResponse{
		Actions: []job.ActionSpec{
			{Name: "a", Type: "run", Params: map[string]any{"run": "echo", "n": 1.0}, If: `jobs["x"].status == "success"`, OnSuccess: "succeed", OnFailure: "continue"},
			{Name: "b", Type: "approval"},
		},
		StorageGet:  []job.StorageEntry{{Path: "in", Scope: "pipeline", Key: "other/in"}},
		StoragePut:  []job.StorageEntry{{Path: "out"}},
		Diagnostics: []sdk.Diagnostic{{Severity: sdk.SeverityWarning, Summary: "deprecated", Field: "with.old"}},
	}
	var got *job.ExpandRequest
	client := sdktest.OverGRPC[job.Job](t, &fake{expand: func(_ context.Context, req *job.ExpandRequest) (*job.ExpandResponse, error) {
		got = req
		return want, nil
	}}, job.Service)
	req := &job.ExpandRequest{Type: "deploy", JobName: "deploy-prod", With: map[string]any{"env": "prod"}, Context: map[string]any{"params": map[string]any{"x": true}}}
	resp, err := client.Expand(context.Background(), req)
	if err != nil {
		t.Fatalf("Expand: %v", err)
	}
	if !reflect.DeepEqual(got, req) {
		t.Errorf("plugin received %+v, want %+v", got, req)
	}
	if !reflect.DeepEqual(resp, want) {
		t.Errorf("Expand returned %+v, want %+v", resp, want)
	}
	types, err := job.ListTypes(context.Background(), client)
	if err != nil || len(types) != 1 || types[0].Name != "deploy" {
		t.Errorf("ListTypes = %v, %v; want only the job type", types, err)
	}
}
