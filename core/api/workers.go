package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// WorkerManager is what /workers serves: the remote workers (`palvella
// worker`) the servers heard of, and draining one. The server's backend
// implements it next to [Backend]; a backend without it answers 501.
type WorkerManager interface {
	Workers(ctx context.Context) ([]resource.Worker, error)
	// DrainWorker sets whether a worker is drained: it finishes its
	// running jobs and leases no more.
	DrainWorker(ctx context.Context, name string, drain bool) (*resource.Worker, error)
}

// DrainRequest is the body of POST /workers/{name}/drain; without a body
// the worker is drained.
type DrainRequest struct {
	Drain *bool `json:"drain,omitempty"`
}

func (s *server) workerManager() (WorkerManager, error) {
	m, ok := s.b.(WorkerManager)
	if !ok {
		return nil, sdk.Errorf(sdk.ErrUnimplemented, "", "this server does not serve remote workers")
	}
	return m, nil
}

func (s *server) workers(c *call) error {
	m, err := s.workerManager()
	if err != nil {
		return err
	}
	items, err := m.Workers(c.r.Context())
	if err != nil {
		return fmt.Errorf("list the workers: %w", err)
	}
	if items == nil {
		items = []resource.Worker{}
	}
	writeJSON(c.w, http.StatusOK, Page[resource.Worker]{Items: items})
	return nil
}

func (s *server) drainWorker(c *call) error {
	m, err := s.workerManager()
	if err != nil {
		return err
	}
	var req DrainRequest
	if err := c.decode(&req, "drain"); err != nil {
		return err
	}
	drain := req.Drain == nil || *req.Drain
	w, err := m.DrainWorker(c.r.Context(), c.r.PathValue("name"), drain)
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, w)
	return nil
}
