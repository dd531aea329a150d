package api

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"

	"github.com/palvella/palvella/core/pluginhost"
	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

func (s *server) health(c *call) error {
	writeJSON(c.w, http.StatusOK, Health{Status: "ok", Version: s.opts.Version})
	return nil
}

func (s *server) openapi(c *call) error {
	c.w.Header().Set("Content-Type", "application/yaml")
	c.w.WriteHeader(http.StatusOK)
	_, _ = c.w.Write(OpenAPI) // the status is sent; nothing to report to
	return nil
}

func (s *server) plugins(c *call) error {
	items := s.b.Plugins(c.r.Context())
	if items == nil {
		items = []pluginhost.Status{}
	}
	writeJSON(c.w, http.StatusOK, Page[pluginhost.Status]{Items: items})
	return nil
}

func (s *server) reloadPlugins(c *call) error {
	r, ok := s.b.(PluginReloader)
	if !ok {
		return sdk.Errorf(sdk.ErrUnimplemented, "", "this server cannot reload its plugins; restart it")
	}
	if err := c.decode(&struct{}{}); err != nil {
		return err
	}
	res, err := r.ReloadPlugins(c.r.Context())
	if err != nil {
		return fmt.Errorf("reload plugins: %w", err)
	}
	if res.Plugins == nil {
		res.Plugins = []pluginhost.Status{}
	}
	writeJSON(c.w, http.StatusOK, res)
	return nil
}

func (s *server) applyPipeline(c *call) error {
	if err := s.checkFileCredentials(c); err != nil {
		return err
	}
	res, err := s.b.ApplyPipeline(c.r.Context(), ApplyRequest{Namespace: c.fileNamespace, Filename: c.filename(), Source: c.source})
	if err != nil {
		return fmt.Errorf("apply %s: %w", c.filename(), err)
	}
	status := http.StatusOK
	if res.Outcome == "created" {
		status = http.StatusCreated
	}
	writeJSON(c.w, status, res)
	return nil
}

func (s *server) validatePipeline(c *call) error {
	if err := s.b.ValidatePipeline(c.r.Context(), c.filename(), c.source); err != nil {
		return fmt.Errorf("validate %s: %w", c.filename(), err)
	}
	if err := s.checkFileCredentials(c); err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, ValidateResult{Valid: true})
	return nil
}

func (s *server) listPipelines(c *call) error {
	page, err := c.page()
	if err != nil {
		return err
	}
	ns := c.r.PathValue("ns")
	p, err := s.b.ListPipelines(c.r.Context(), ns, page)
	if err != nil {
		return fmt.Errorf("list the pipelines of %s: %w", ns, err)
	}
	if p.Items == nil {
		p.Items = []resource.Pipeline{}
	}
	writeJSON(c.w, http.StatusOK, p)
	return nil
}

func (s *server) getPipeline(c *call) error {
	ns, name := c.r.PathValue("ns"), c.r.PathValue("name")
	p, err := s.b.GetPipeline(c.r.Context(), ns, name)
	if err != nil {
		return fmt.Errorf("get pipeline %s/%s: %w", ns, name, err)
	}
	writeJSON(c.w, http.StatusOK, p)
	return nil
}

func (s *server) deletePipeline(c *call) error {
	ns, name := c.r.PathValue("ns"), c.r.PathValue("name")
	if err := s.b.DeletePipeline(c.r.Context(), ns, name); err != nil {
		return fmt.Errorf("delete pipeline %s/%s: %w", ns, name, err)
	}
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) listVersions(c *call) error {
	ns, name := c.r.PathValue("ns"), c.r.PathValue("name")
	vs, err := s.b.ListPipelineVersions(c.r.Context(), ns, name)
	if err != nil {
		return fmt.Errorf("list the versions of pipeline %s/%s: %w", ns, name, err)
	}
	if vs == nil {
		vs = []resource.PipelineVersion{}
	}
	writeJSON(c.w, http.StatusOK, Page[resource.PipelineVersion]{Items: vs})
	return nil
}

func (s *server) startRun(c *call) error {
	// Params are decoded one by one so that an error names the param.
	var req struct {
		Params map[string]json.RawMessage `json:"params"`
	}
	if err := c.decode(&req, "params"); err != nil {
		return err
	}
	params := make(map[string]string, len(req.Params))
	for _, k := range slices.Sorted(maps.Keys(req.Params)) {
		var v string
		if err := json.Unmarshal(req.Params[k], &v); err != nil {
			return sdk.Errorf(sdk.ErrInvalidArgument, "params."+k, "must be a string (the server converts it to the param's type)")
		}
		params[k] = v
	}
	ns, name := c.r.PathValue("ns"), c.r.PathValue("name")
	if err := s.checkRunCredentials(c, ns, name); err != nil {
		return err
	}
	run, err := s.b.StartRun(c.r.Context(), ns, name, params, resource.TriggerInfo{Type: "manual", By: c.id.Name})
	if err != nil {
		return fmt.Errorf("start a run of %s/%s: %w", ns, name, err)
	}
	writeJSON(c.w, http.StatusCreated, run)
	return nil
}

func (s *server) listRuns(c *call) error {
	page, err := c.page()
	if err != nil {
		return err
	}
	ns, pipeline := c.r.PathValue("ns"), c.r.URL.Query().Get("pipeline")
	if pipeline != "" && !validName(pipeline) {
		return sdk.Errorf(sdk.ErrInvalidArgument, "pipeline", "%q is not a valid pipeline name", pipeline)
	}
	p, err := s.b.ListRuns(c.r.Context(), ns, pipeline, page)
	if err != nil {
		return fmt.Errorf("list the runs of %s: %w", ns, err)
	}
	if p.Items == nil {
		p.Items = []resource.Run{}
	}
	writeJSON(c.w, http.StatusOK, p)
	return nil
}

func (s *server) run(c *call) (*resource.Run, error) {
	ns, name := c.r.PathValue("ns"), c.r.PathValue("run")
	run, err := s.b.GetRun(c.r.Context(), ns, name)
	if err != nil {
		return nil, fmt.Errorf("get run %s/%s: %w", ns, name, err)
	}
	return run, nil
}

func (s *server) getRun(c *call) error {
	run, err := s.run(c)
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, run)
	return nil
}

func (s *server) listJobs(c *call) error {
	run, err := s.run(c)
	if err != nil {
		return err
	}
	jobs := run.Jobs
	if jobs == nil {
		jobs = []resource.JobStatus{}
	}
	writeJSON(c.w, http.StatusOK, Page[resource.JobStatus]{Items: jobs})
	return nil
}

func (s *server) listActions(c *call) error {
	run, err := s.run(c)
	if err != nil {
		return err
	}
	job := run.Job(c.r.PathValue("job"))
	if job == nil {
		return sdk.Errorf(sdk.ErrNotFound, "job", "run %s has no job %q", run.Name, c.r.PathValue("job"))
	}
	actions := job.Actions
	if actions == nil {
		actions = []resource.ActionStatus{}
	}
	writeJSON(c.w, http.StatusOK, Page[resource.ActionStatus]{Items: actions})
	return nil
}

func (s *server) actionLog(c *call) error {
	ns, run := c.r.PathValue("ns"), c.r.PathValue("run")
	job, action := c.r.PathValue("job"), c.r.PathValue("action")
	rc, err := s.b.ActionLog(c.r.Context(), ns, run, job, action)
	if err != nil {
		return fmt.Errorf("read the log of %s/%s job %s action %s: %w", ns, run, job, action, err)
	}
	defer rc.Close()
	c.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	c.w.Header().Set("X-Content-Type-Options", "nosniff")
	c.w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(c.w, rc) // the status is sent; a broken copy shows as a short body
	return nil
}

func (s *server) cancelRun(c *call) error {
	var req CancelRequest
	if err := c.decode(&req, "reason"); err != nil {
		return err
	}
	ns, name := c.r.PathValue("ns"), c.r.PathValue("run")
	reason := req.Reason
	if reason == "" {
		reason = "cancelled by " + c.id.Name
	}
	run, err := s.b.CancelRun(c.r.Context(), ns, name, reason)
	if err != nil {
		return fmt.Errorf("cancel run %s/%s: %w", ns, name, err)
	}
	writeJSON(c.w, http.StatusOK, run)
	return nil
}

func (s *server) approve(c *call) error { return s.decide(c, true) }

func (s *server) reject(c *call) error { return s.decide(c, false) }

func (s *server) decide(c *call, approve bool) error {
	var req DecideRequest
	if err := c.decode(&req, "job", "comment"); err != nil {
		return err
	}
	ns, name := c.r.PathValue("ns"), c.r.PathValue("run")
	run, err := s.b.Decide(c.r.Context(), ns, name, req.Job, approve, c.id.Name, req.Comment)
	if err != nil {
		verb := "approve"
		if !approve {
			verb = "reject"
		}
		return fmt.Errorf("%s run %s/%s: %w", verb, ns, name, err)
	}
	writeJSON(c.w, http.StatusOK, run)
	return nil
}
