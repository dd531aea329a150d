package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

// What a person reads of an error: each thing said once, and the internals
// of the layers it went through (gRPC stream resets, doubled context
// errors, the store's "key:" field) translated into what happened.

// notFoundRE is how the store says a resource does not exist.
var notFoundRE = regexp.MustCompile(`([A-Z][A-Za-z]*) "([^"]+)" not found in namespace "([^"]+)"`)

// humanError rewrites err for the CLI's "Error: ..." line. ctx is the
// command's context: when it is done, the user interrupted the command.
// The exit code stays err's (see exitCoder).
func humanError(ctx context.Context, err error) string {
	if err == nil {
		return ""
	}
	var ec exitCoder
	if errors.As(err, &ec) {
		// Commands that choose their exit code have written their
		// message for a person already.
		return err.Error()
	}
	msg := err.Error()
	if errors.Is(err, sdk.ErrNotFound) {
		if m := notFoundRE.FindAllStringSubmatch(msg, -1); len(m) > 0 {
			last := m[len(m)-1]
			return fmt.Sprintf("%s %s/%s not found", strings.ToLower(last[1]), last[3], last[2])
		}
	}
	if ctx != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return "interrupted"
	}
	switch {
	case strings.Contains(msg, "RST_STREAM") || strings.Contains(msg, "stream error: stream ID") || strings.Contains(msg, "unexpected EOF"):
		return onceSaid(cutInternals(msg)) + " (the connection to the server broke off: it stopped or restarted)"
	case strings.Contains(msg, "context canceled") || strings.Contains(msg, "context deadline exceeded"):
		what := "the request was cancelled before it finished (the server may be shutting down)"
		if strings.Contains(msg, "deadline exceeded") {
			what = "the request took too long and was given up"
		}
		if rest := onceSaid(cutInternals(msg)); rest != "" {
			return rest + ": " + what
		}
		return what
	}
	return onceSaid(msg)
}

// cutInternals removes the wording of Go's and gRPC's errors that tells a
// person nothing: context errors and stream resets at the end of a message.
func cutInternals(msg string) string {
	parts := strings.Split(msg, ": ")
	var out []string
	for _, p := range parts {
		l := strings.ToLower(p)
		if l == "context canceled" || l == "context deadline exceeded" || strings.Contains(p, "RST_STREAM") ||
			strings.HasPrefix(l, "stream error") || strings.HasPrefix(l, "rpc error") || l == "unexpected eof" ||
			strings.HasPrefix(l, "code = ") || strings.HasPrefix(l, "desc = ") {
			break
		}
		out = append(out, p)
	}
	return strings.Join(out, ": ")
}

// onceSaid drops the parts of a "a: b: c" chain that repeat the part before
// them (the client and the server both saying "start a run of X"), and the
// store's "key" field name.
func onceSaid(msg string) string {
	parts := strings.Split(msg, ": ")
	var out []string
	for _, p := range parts {
		if p == "key" {
			continue
		}
		if n := len(out); n > 0 && sameWords(out[n-1], p) {
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, ": ")
}

func sameWords(a, b string) bool {
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, `"`, "")) }
	return norm(a) == norm(b)
}
