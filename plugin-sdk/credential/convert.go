package credential

import (
	credentialv1 "github.com/palvella/palvella/proto/palvella/credential/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func metaToProto(m Meta) *credentialv1.CredentialMeta {
	out := &credentialv1.CredentialMeta{Name: m.Name, Type: m.Type, Labels: m.Labels}
	if !m.CreatedAt.IsZero() {
		out.CreatedAt = timestamppb.New(m.CreatedAt)
	}
	if !m.UpdatedAt.IsZero() {
		out.UpdatedAt = timestamppb.New(m.UpdatedAt)
	}
	return out
}

func metaFromProto(m *credentialv1.CredentialMeta) Meta {
	out := Meta{Name: m.GetName(), Type: m.GetType(), Labels: m.GetLabels()}
	if m.GetCreatedAt() != nil {
		out.CreatedAt = m.GetCreatedAt().AsTime()
	}
	if m.GetUpdatedAt() != nil {
		out.UpdatedAt = m.GetUpdatedAt().AsTime()
	}
	return out
}
