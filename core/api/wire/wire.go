// Package wire holds the shapes of Palvella's HTTP API: request and
// response bodies, error bodies and their codes, log stream events,
// timelines, tokens and credentials as shown, and plugin statuses. It
// depends on nothing but the standard library, the resource types and the
// SDK's plain types, so that the Go client (core/client) and other
// programs speak the API without pulling in the server or the plugin
// host. core/api serves these shapes and gives them under its own name.
package wire

import (
	"strconv"

	"github.com/palvella/palvella/core/resource"
)

// Prefix is the path every API route starts with.
const Prefix = "/api/v1"

// ApplyRequest applies a pipeline file.
type ApplyRequest struct {
	// Namespace overrides metadata.namespace when not empty.
	Namespace string
	Filename  string
	Source    []byte
}

// ApplyResult says what applying did.
type ApplyResult struct {
	Pipeline *resource.Pipeline `json:"pipeline"`
	// Outcome is "created", "updated" (a new version) or "unchanged".
	Outcome string `json:"outcome"`
}

// PageRequest asks for one page of a list.
type PageRequest struct {
	Size  int
	Token string
}

// Page is one page of a list.
type Page[T any] struct {
	Items         []T    `json:"items"`
	NextPageToken string `json:"nextPageToken,omitempty"`
}

// ValidationError lists every problem found in a pipeline file.
type ValidationError struct {
	Problems []Problem `json:"problems"`
}

// Problem is one problem in a file: where and what.
type Problem struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (e *ValidationError) Error() string {
	s := ""
	for i, p := range e.Problems {
		if i > 0 {
			s += "\n"
		}
		s += p.String()
	}
	return s
}

func (p Problem) String() string {
	s := ""
	if p.File != "" {
		s += p.File + ":"
		if p.Line > 0 {
			s += strconv.Itoa(p.Line) + ":"
		}
		s += " "
	}
	if p.Field != "" {
		s += p.Field + ": "
	}
	return s + p.Message
}

// Health is the body of GET /api/v1/health.
type Health struct {
	Status  string `json:"status"`
	Version string `json:"version,omitempty"`
}

// ValidateResult is the body of a successful POST /api/v1/pipelines/validate.
// A file with problems gets a validation_failed error instead.
type ValidateResult struct {
	Valid bool `json:"valid"`
}

// StartRunRequest is the body of POST .../pipelines/{name}/runs.
type StartRunRequest struct {
	// Params are the run parameters as strings (`-p k=v`), coerced to
	// their declared types by the server.
	Params map[string]string `json:"params,omitempty"`
}

// CancelRequest is the (optional) body of POST .../runs/{run}/cancel.
type CancelRequest struct {
	Reason string `json:"reason,omitempty"`
}

// DecideRequest is the (optional) body of POST .../runs/{run}/approve and
// .../reject. An empty Job means the only job of the run waiting for
// approval.
type DecideRequest struct {
	Job     string `json:"job,omitempty"`
	Comment string `json:"comment,omitempty"`
}
