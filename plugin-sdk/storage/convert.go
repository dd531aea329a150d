package storage

import (
	storagev1 "github.com/palvella/palvella/proto/palvella/storage/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func scopeToProto(s Scope) *storagev1.Scope {
	return &storagev1.Scope{Kind: storagev1.ScopeKind(s.Kind), Namespace: s.Namespace, Pipeline: s.Pipeline, Run: s.Run, Job: s.Job}
}

func scopeFromProto(s *storagev1.Scope) Scope {
	return Scope{Kind: ScopeKind(s.GetKind()), Namespace: s.GetNamespace(), Pipeline: s.GetPipeline(), Run: s.GetRun(), Job: s.GetJob()}
}

func refToProto(r ObjectRef) *storagev1.ObjectRef {
	return &storagev1.ObjectRef{Scope: scopeToProto(r.Scope), Key: r.Key}
}

func refFromProto(r *storagev1.ObjectRef) ObjectRef {
	return ObjectRef{Scope: scopeFromProto(r.GetScope()), Key: r.GetKey()}
}

func infoToProto(i *ObjectInfo) *storagev1.ObjectInfo {
	out := &storagev1.ObjectInfo{Ref: refToProto(i.Ref), Size: i.Size, Sha256: i.SHA256}
	if !i.ModifiedAt.IsZero() {
		out.ModifiedAt = timestamppb.New(i.ModifiedAt)
	}
	return out
}

func infoFromProto(i *storagev1.ObjectInfo) *ObjectInfo {
	out := &ObjectInfo{Ref: refFromProto(i.GetRef()), Size: i.GetSize(), SHA256: i.GetSha256()}
	if i.GetModifiedAt() != nil {
		out.ModifiedAt = i.GetModifiedAt().AsTime()
	}
	return out
}
