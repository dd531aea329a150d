// Package manifest reads a plugin binary's manifest by running it with
// `--describe`, with a timeout and a bound on its output.
package manifest

import (
	"bytes"
	"context"
	"encoding/json"
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
	var stderr limitedBuffer
	stderr.max = 4096
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", binary, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, &registry.Error{Kind: registry.ErrInvalidArgument, Field: binary, Detail: "cannot run it", Err: err}
	}
	out, _ := io.ReadAll(io.LimitReader(stdout, MaxOutput+1))
	if len(out) > MaxOutput {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, &registry.Error{Kind: registry.ErrInvalidArgument, Field: binary,
			Detail: fmt.Sprintf("%s printed more than %d bytes", DescribeFlag, MaxOutput)}
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		return nil, &registry.Error{Kind: registry.ErrInvalidArgument, Field: binary,
			Detail: fmt.Sprintf("%s did not describe itself within %s", DescribeFlag, timeout), Err: ctx.Err()}
	}
	if err != nil {
		return nil, &registry.Error{Kind: registry.ErrInvalidArgument, Field: binary,
			Detail: fmt.Sprintf("running %s failed: %s", DescribeFlag, bytes.TrimSpace(stderr.Bytes())), Err: err,
			Hint: "is it a palvella plugin built with the plugin SDK?"}
	}
	return Parse(out)
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

// limitedBuffer keeps the first max bytes written and drops the rest, so
// a chatty stderr neither grows memory nor blocks the process.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

var _ io.Writer = (*limitedBuffer)(nil)
