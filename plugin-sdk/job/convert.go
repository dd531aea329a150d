package job

import (
	"fmt"

	sdk "github.com/palvella/palvella/plugin-sdk"
	jobv1 "github.com/palvella/palvella/proto/palvella/job/v1"
)

func requestToProto(req *ExpandRequest) (*jobv1.ExpandRequest, error) {
	with, err := sdk.StructToProto(req.With, "with")
	if err != nil {
		return nil, err
	}
	ctxs, err := sdk.StructToProto(req.Context, "context")
	if err != nil {
		return nil, err
	}
	return &jobv1.ExpandRequest{Type: req.Type, JobName: req.JobName, With: with, Context: ctxs}, nil
}

func requestFromProto(req *jobv1.ExpandRequest) *ExpandRequest {
	return &ExpandRequest{Type: req.GetType(), JobName: req.GetJobName(), With: sdk.StructFromProto(req.GetWith()), Context: sdk.StructFromProto(req.GetContext())}
}

func responseToProto(r *ExpandResponse) (*jobv1.ExpandResponse, error) {
	out := &jobv1.ExpandResponse{Diagnostics: sdk.DiagnosticsToProto(r.Diagnostics)}
	for i, a := range r.Actions {
		params, err := sdk.StructToProto(a.Params, fmt.Sprintf("actions[%d].params", i))
		if err != nil {
			return nil, err
		}
		out.Actions = append(out.Actions, &jobv1.ActionSpec{Name: a.Name, Type: a.Type, Params: params, If: a.If, OnSuccess: a.OnSuccess, OnFailure: a.OnFailure})
	}
	out.StorageGet = entriesToProto(r.StorageGet)
	out.StoragePut = entriesToProto(r.StoragePut)
	return out, nil
}

func responseFromProto(r *jobv1.ExpandResponse) *ExpandResponse {
	out := &ExpandResponse{Diagnostics: sdk.DiagnosticsFromProto(r.GetDiagnostics())}
	for _, a := range r.GetActions() {
		out.Actions = append(out.Actions, ActionSpec{
			Name: a.GetName(), Type: a.GetType(), Params: sdk.StructFromProto(a.GetParams()),
			If: a.GetIf(), OnSuccess: a.GetOnSuccess(), OnFailure: a.GetOnFailure(),
		})
	}
	out.StorageGet = entriesFromProto(r.GetStorageGet())
	out.StoragePut = entriesFromProto(r.GetStoragePut())
	return out
}

func entriesToProto(es []StorageEntry) []*jobv1.StorageEntry {
	var out []*jobv1.StorageEntry
	for _, e := range es {
		out = append(out, &jobv1.StorageEntry{Path: e.Path, Scope: e.Scope, Key: e.Key})
	}
	return out
}

func entriesFromProto(es []*jobv1.StorageEntry) []StorageEntry {
	var out []StorageEntry
	for _, e := range es {
		out = append(out, StorageEntry{Path: e.GetPath(), Scope: e.GetScope(), Key: e.GetKey()})
	}
	return out
}
