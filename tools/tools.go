//go:build tools

// Package tools pins the code generators used by `make proto`. They are
// installed from the Go module proxy at the versions recorded in go.mod, so
// generated code is reproducible and does not depend on a system protoc.
package tools

import (
	_ "github.com/bufbuild/buf/cmd/buf"
	_ "google.golang.org/grpc/cmd/protoc-gen-go-grpc"
	_ "google.golang.org/protobuf/cmd/protoc-gen-go"
)
