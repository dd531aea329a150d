package orchestrator

import (
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/types/known/structpb"
)

// Values that travel in the worker protocol (params, outputs, expression
// contexts) are JSON values: they go through JSON on their way into a
// protobuf Struct, so that any value a document can hold (numbers of any
// Go type, nested lists and maps) converts.

// toStruct converts a map of JSON values; nil stays nil.
func toStruct(m map[string]any) (*structpb.Struct, error) {
	if m == nil {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode values: %w", err)
	}
	var plain map[string]any
	if err := json.Unmarshal(b, &plain); err != nil {
		return nil, fmt.Errorf("encode values: %w", err)
	}
	return structpb.NewStruct(plain)
}

// structMap converts back; nil gives an empty map.
func structMap(s *structpb.Struct) map[string]any {
	if s == nil {
		return map[string]any{}
	}
	return s.AsMap()
}
