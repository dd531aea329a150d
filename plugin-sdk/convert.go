package sdk

import (
	"fmt"

	pluginv1 "github.com/palvella/palvella/proto/palvella/plugin/v1"
	"google.golang.org/protobuf/types/known/structpb"
)

// The functions in this file convert the SDK's shared types to and from
// their wire form. The category shims use them; plugin authors do not.

// StructToProto converts a JSON-like map for the wire. A nil map is sent as
// nil.
func StructToProto(m map[string]any, field string) (*structpb.Struct, error) {
	if m == nil {
		return nil, nil
	}
	s, err := structpb.NewStruct(m)
	if err != nil {
		return nil, Errorf(ErrInvalidArgument, field, "cannot be sent to a plugin: %v", err)
	}
	return s, nil
}

// StructFromProto converts a wire struct back to a map.
func StructFromProto(s *structpb.Struct) map[string]any {
	if s == nil {
		return nil
	}
	return s.AsMap()
}

// ManifestToProto converts a manifest for the wire.
func ManifestToProto(m *Manifest) (*pluginv1.Manifest, error) {
	schema, err := StructToProto(m.ConfigSchema, "configSchema")
	if err != nil {
		return nil, err
	}
	out := &pluginv1.Manifest{Name: m.Name, Version: m.Version, Description: m.Description, ConfigSchema: schema}
	for _, c := range m.Categories {
		out.Categories = append(out.Categories, pluginv1.Category(c))
	}
	for _, v := range m.ProtocolVersions {
		out.ProtocolVersions = append(out.ProtocolVersions, int32(v))
	}
	for i, t := range m.Types {
		pt, err := TypeInfoToProto(t)
		if err != nil {
			return nil, fmt.Errorf("types[%d]: %w", i, err)
		}
		out.Types = append(out.Types, pt)
	}
	return out, nil
}

// ManifestFromProto converts a manifest received from a plugin.
func ManifestFromProto(m *pluginv1.Manifest) *Manifest {
	out := &Manifest{Name: m.GetName(), Version: m.GetVersion(), Description: m.GetDescription(), ConfigSchema: StructFromProto(m.GetConfigSchema())}
	for _, c := range m.GetCategories() {
		out.Categories = append(out.Categories, Category(c))
	}
	for _, v := range m.GetProtocolVersions() {
		out.ProtocolVersions = append(out.ProtocolVersions, int(v))
	}
	out.Types = TypeInfosFromProto(m.GetTypes())
	return out
}

// TypeInfoToProto converts a type for the wire.
func TypeInfoToProto(t TypeInfo) (*pluginv1.TypeInfo, error) {
	schema, err := StructToProto(t.ParamsSchema, "paramsSchema")
	if err != nil {
		return nil, err
	}
	return &pluginv1.TypeInfo{Category: pluginv1.Category(t.Category), Name: t.Name, Description: t.Description, ParamsSchema: schema}, nil
}

// TypeInfosFromProto converts types received from a plugin.
func TypeInfosFromProto(ts []*pluginv1.TypeInfo) []TypeInfo {
	var out []TypeInfo
	for _, t := range ts {
		out = append(out, TypeInfo{Category: Category(t.GetCategory()), Name: t.GetName(), Description: t.GetDescription(), ParamsSchema: StructFromProto(t.GetParamsSchema())})
	}
	return out
}

// DiagnosticsToProto converts diagnostics for the wire.
func DiagnosticsToProto(ds []Diagnostic) []*pluginv1.Diagnostic {
	var out []*pluginv1.Diagnostic
	for _, d := range ds {
		out = append(out, &pluginv1.Diagnostic{Severity: pluginv1.Severity(d.Severity), Summary: d.Summary, Detail: d.Detail, Field: d.Field})
	}
	return out
}

// DiagnosticsFromProto converts diagnostics received from a plugin.
func DiagnosticsFromProto(ds []*pluginv1.Diagnostic) []Diagnostic {
	var out []Diagnostic
	for _, d := range ds {
		out = append(out, Diagnostic{Severity: Severity(d.GetSeverity()), Summary: d.GetSummary(), Detail: d.GetDetail(), Field: d.GetField()})
	}
	return out
}
