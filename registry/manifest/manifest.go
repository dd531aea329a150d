// Package manifest reads a plugin binary's manifest by running it with
// `--describe`, with a timeout and a bound on its output.
package manifest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"time"

	"github.com/palvella/palvella/registry"
)

// DescribeFlag is the flag that makes a plugin print its manifest.
const DescribeFlag = "--describe"

// MaxOutput bounds what a binary may print for --describe.
const MaxOutput = 1 << 20

// DefaultTimeout bounds how long a binary may take to describe itself.
const DefaultTimeout = 10 * time.Second

// Manifest is what a plugin says about itself. It mirrors the JSON printed
// by `--describe`; fields the registry does not need are kept raw.
type Manifest struct {
	Name             string          `json:"name"`
	Version          string          `json:"version"`
	Description      string          `json:"description,omitempty"`
	Categories       []string        `json:"categories"`
	ProtocolVersions []int           `json:"protocolVersions"`
	ConfigSchema     json.RawMessage `json:"configSchema,omitempty"`
	Types            json.RawMessage `json:"types,omitempty"`
}

// Read runs `binary --describe` and parses its manifest. timeout <= 0 means
// DefaultTimeout.
func Read(ctx context.Context, binary string, timeout time.Duration) (*Manifest, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, DescribeFlag)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.WaitDelay = time.Second
	out := &limitedBuffer{max: MaxOutput}
	var stderr limitedBuffer
	stderr.max = 4096
	cmd.Stdout = out
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		return nil, &registry.Error{Kind: registry.ErrInvalidArgument, Field: binary,
			Detail: fmt.Sprintf("%s did not describe itself within %s", DescribeFlag, timeout), Err: ctx.Err()}
	}
	if out.overflow {
		return nil, &registry.Error{Kind: registry.ErrInvalidArgument, Field: binary,
			Detail: fmt.Sprintf("%s printed more than %d bytes", DescribeFlag, MaxOutput)}
	}
	if err != nil {
		return nil, &registry.Error{Kind: registry.ErrInvalidArgument, Field: binary,
			Detail: fmt.Sprintf("running %s failed: %s", DescribeFlag, bytes.TrimSpace(stderr.Bytes())), Err: err,
			Hint: "is it a palvella plugin built with the plugin SDK?"}
	}
	return Parse(out.Bytes())
}

// Parse decodes and checks a manifest printed by --describe.
func Parse(data []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, &registry.Error{Kind: registry.ErrInvalidArgument, Field: "manifest", Detail: "not a JSON manifest", Err: err}
	}
	switch {
	case m.Name == "":
		return nil, registry.Errorf(registry.ErrInvalidArgument, "manifest.name", "is empty")
	case m.Version == "":
		return nil, registry.Errorf(registry.ErrInvalidArgument, "manifest.version", "is empty")
	case len(m.Categories) == 0:
		return nil, registry.Errorf(registry.ErrInvalidArgument, "manifest.categories", "lists no category")
	case len(m.ProtocolVersions) == 0:
		return nil, registry.Errorf(registry.ErrInvalidArgument, "manifest.protocolVersions", "lists no protocol version")
	}
	return &m, nil
}

type limitedBuffer struct {
	bytes.Buffer
	max      int
	overflow bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		b.overflow = true
		return 0, errors.New("output too large")
	}
	return b.Buffer.Write(p)
}

var _ io.Writer = (*limitedBuffer)(nil)
