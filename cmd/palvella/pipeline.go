package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/client"
	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/core/spec"
	"github.com/spf13/cobra"
)

func newPipelineCmd(app *App) *cobra.Command {
	r := &remote{}
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "Apply, validate, list, show, delete and run pipelines",
		Long: `Pipelines are applied to a Palvella server from files (YAML or JSON); every
change of a file is a new version. The server is found from --server,
PALVELLA_SERVER or $PALVELLA_HOME/cli.json (written by a local server), the token
from --token, PALVELLA_TOKEN or cli.json.`,
	}
	remoteFlags(cmd, r)
	cmd.AddCommand(newPipelineApplyCmd(app, r), newPipelineValidateCmd(app, r), newPipelineListCmd(app, r),
		newPipelineGetCmd(app, r), newPipelineDeleteCmd(app, r), newPipelineRunCmd(app, r))
	return cmd
}

// readSource reads a pipeline file, or stdin for "-".
func readSource(path string) ([]byte, string, error) {
	if path == "" {
		return nil, "", errors.New("-f FILE is required")
	}
	if path == "-" {
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return nil, "", fmt.Errorf("read stdin: %w", err)
		}
		return b, "stdin", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("read the pipeline file: %w", err)
	}
	return b, path, nil
}

// problemsError prints every problem of a file that failed validation
// and returns an error that exits 1; other errors pass through.
func (app *App) problemsError(err error, output string) error {
	var ve *api.ValidationError
	if !errors.As(err, &ve) {
		return remoteError(err)
	}
	if output == "json" {
		if werr := writeJSON(app.Out, map[string]any{"valid": false, "problems": ve.Problems}); werr != nil {
			return werr
		}
	} else {
		for _, p := range ve.Problems {
			fmt.Fprintln(app.Out, p.String())
		}
	}
	n := len(ve.Problems)
	s := "s"
	if n == 1 {
		s = ""
	}
	return exitError{code: 1, err: fmt.Errorf("the pipeline file has %d problem%s", n, s)}
}

func newPipelineApplyCmd(app *App, r *remote) *cobra.Command {
	var file, output string
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create a pipeline from a file, or update it to a new version",
		Long: `Apply a pipeline file. The pipeline is created, updated to a new version, or
left unchanged when the file says nothing new. -n overrides the file's
metadata.namespace. A file with problems is not applied: every problem is
printed as FILE:LINE: FIELD: MESSAGE and the command exits 1.`,
		Example: `  palvella pipeline apply -f ci.yaml
  cat ci.yaml | palvella pipeline apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			src, name, err := readSource(file)
			if err != nil {
				return err
			}
			c, err := app.client(r)
			if err != nil {
				return err
			}
			req := api.ApplyRequest{Filename: name, Source: src}
			if cmd.Flags().Changed("namespace") {
				req.Namespace = r.namespace
			}
			res, err := c.ApplyPipeline(cmd.Context(), req)
			if err != nil {
				return app.problemsError(err, output)
			}
			if output == "json" {
				return writeJSON(app.Out, res)
			}
			p := res.Pipeline
			switch res.Outcome {
			case "updated":
				fmt.Fprintf(app.Out, "pipeline %s/%s updated to v%d\n", p.Namespace, p.Name, p.Version)
			case "unchanged":
				fmt.Fprintf(app.Out, "pipeline %s/%s unchanged (v%d)\n", p.Namespace, p.Name, p.Version)
			default:
				fmt.Fprintf(app.Out, "pipeline %s/%s %s (v%d)\n", p.Namespace, p.Name, res.Outcome, p.Version)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the pipeline file (- for stdin)")
	outputFlag(cmd, &output)
	return cmd
}

func newPipelineValidateCmd(app *App, r *remote) *cobra.Command {
	var file, output string
	var offline bool
	cmd := &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Check a pipeline file without applying it",
		Long: `Check a pipeline file without applying it. Every problem is printed as
FILE:LINE: FIELD: MESSAGE; the command exits 1 when there is any.

The file is checked here first: its syntax, schema, names, requirements,
expressions, parameters, storage paths and triggers, and the params of the
builtin plugins' action and job types (run, match, terraform/plan, ...)
against the JSON Schema each describes. When it passes, the server (if one
answers) also checks what only it knows: the types of installed plugins
and their params, and its own limits. With no server, or with --offline,
the command says what it could not check.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			src, name, err := readSource(file)
			if err != nil {
				return err
			}
			if _, err := spec.Load(name, src, app.offlineOptions(cmd.Context())); err != nil {
				return app.problemsError(localProblems(err), output)
			}
			checkedBy := "server"
			if offline {
				checkedBy = "local"
			} else {
				c, err := app.client(r)
				if err != nil {
					return err
				}
				err = c.ValidatePipeline(cmd.Context(), name, src)
				switch {
				case client.IsUnreachable(err):
					checkedBy = "local"
				case err != nil:
					return app.problemsError(err, output)
				}
			}
			if output == "json" {
				return writeJSON(app.Out, map[string]any{"valid": true, "problems": []api.Problem{}, "checkedBy": checkedBy})
			}
			if checkedBy == "local" {
				fmt.Fprintf(app.Out, "%s: valid (checked without a server: against the builtin plugins' types only; the types of installed plugins and the server's limits were not checked)\n", name)
				return nil
			}
			fmt.Fprintf(app.Out, "%s: valid\n", name)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the pipeline file (- for stdin)")
	cmd.Flags().BoolVar(&offline, "offline", false, "check the file here only, without asking a server")
	outputFlag(cmd, &output)
	return cmd
}

// localProblems turns the problems spec found into the API's form, so they
// print as the server's do.
func localProblems(err error) error {
	var list spec.Errors
	if !errors.As(err, &list) {
		return err
	}
	ve := &api.ValidationError{}
	for _, e := range list {
		ve.Problems = append(ve.Problems, api.Problem{File: e.File, Line: e.Line, Field: e.Path, Message: e.Message})
	}
	return ve
}

func newPipelineListCmd(app *App, r *remote) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the pipelines of a namespace",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := app.remoteClient(r, output)
			if err != nil {
				return err
			}
			var all []resource.Pipeline
			page := api.PageRequest{Size: 200}
			for {
				p, err := c.ListPipelines(cmd.Context(), r.namespace, page)
				if err != nil {
					return remoteError(err)
				}
				all = append(all, p.Items...)
				if p.NextPageToken == "" {
					break
				}
				page.Token = p.NextPageToken
			}
			if output == "json" {
				if all == nil {
					all = []resource.Pipeline{}
				}
				return writeJSON(app.Out, all)
			}
			t := newTable(app.Out, "NAME", "VERSION", "RUNS", "UPDATED", "DESCRIPTION")
			for _, p := range all {
				t.row(p.Name, fmt.Sprintf("v%d", p.Version), fmt.Sprint(p.LastRun), when(&p.UpdatedAt), p.Description)
			}
			return t.flush()
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

func newPipelineGetCmd(app *App, r *remote) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Show a pipeline: its jobs, triggers and versions",
		Long: `Show a pipeline: its current version; its jobs (what each requires, its when
and if, its engine, the job type it uses or how many actions it has, its
retries and timeout); its triggers (type, name, and the schedule, or the
webhook's path on the webhook listener and the credential that signs it,
never a secret's value); and its versions (number, hash, when applied).
With -o json: {"pipeline": ..., "versions": [...]}, the pipeline with its
whole normalized spec.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := app.remoteClient(r, output)
			if err != nil {
				return err
			}
			p, err := c.GetPipeline(cmd.Context(), r.namespace, args[0])
			if err != nil {
				return remoteError(err)
			}
			vs, err := c.ListPipelineVersions(cmd.Context(), r.namespace, args[0])
			if err != nil {
				return remoteError(err)
			}
			if output == "json" {
				if vs == nil {
					vs = []resource.PipelineVersion{}
				}
				return writeJSON(app.Out, map[string]any{"pipeline": p, "versions": vs})
			}
			fmt.Fprintf(app.Out, "Name:        %s\nNamespace:   %s\nVersion:     v%d\nRuns:        %d\nUpdated:     %s\n",
				p.Name, p.Namespace, p.Version, p.LastRun, when(&p.UpdatedAt))
			if p.Description != "" {
				fmt.Fprintf(app.Out, "Description: %s\n", p.Description)
			}
			if err := printPipelineSpec(app.Out, p); err != nil {
				return err
			}
			fmt.Fprintln(app.Out, "\nVersions:")
			t := newTable(app.Out, "  VERSION", "APPLIED", "HASH")
			for _, v := range vs {
				t.row(fmt.Sprintf("  v%d", v.Version), when(&v.CreatedAt), shortHash(v.Hash))
			}
			return t.flush()
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

// printPipelineSpec prints the jobs and triggers of a pipeline's current
// version. Secrets are never printed: a webhook's secret is a credential,
// shown by name.
func printPipelineSpec(w io.Writer, p *resource.Pipeline) error {
	if len(p.Spec) == 0 {
		return nil
	}
	var doc spec.Pipeline
	if err := json.Unmarshal(p.Spec, &doc); err != nil {
		fmt.Fprintf(w, "Spec:        (not readable by this CLI: %v)\n", err)
		return nil
	}
	sp := doc.Spec
	if sp.Timeout != "" || sp.Concurrency > 0 {
		var parts []string
		if sp.Timeout != "" {
			parts = append(parts, "timeout "+string(sp.Timeout))
		}
		if sp.Concurrency > 0 {
			parts = append(parts, fmt.Sprintf("at most %d runs at once", sp.Concurrency))
		}
		fmt.Fprintf(w, "Limits:      %s\n", strings.Join(parts, ", "))
	}
	if len(sp.Params) > 0 {
		var names []string
		for _, pa := range sp.Params {
			names = append(names, pa.Name+" ("+firstOf(pa.Type, spec.TypeString)+")")
		}
		fmt.Fprintf(w, "Params:      %s\n", strings.Join(names, ", "))
	}
	fmt.Fprintln(w, "\nJobs:")
	t := newTable(w, "  NAME", "REQUIRES", "WHEN", "IF", "ENGINE", "DOES", "RETRIES", "TIMEOUT")
	for _, j := range sp.Jobs {
		does := fmt.Sprintf("%d actions", len(j.Actions))
		if len(j.Actions) == 1 {
			does = "1 action"
		}
		if j.Uses != "" {
			does = "uses " + j.Uses
		}
		t.row("  "+j.Name, orDash(strings.Join(j.Requires, ",")), firstOf(j.When, spec.WhenSuccess), orDash(clip(j.If, 40)),
			engineOf(j.Engine, sp.Engine), does, fmt.Sprint(j.Retries), orDash(string(j.Timeout)))
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nTriggers:")
	if len(sp.Triggers) == 0 {
		fmt.Fprintln(w, "  none (runs start from the CLI or the API)")
		return nil
	}
	t = newTable(w, "  NAME", "TYPE", "SCHEDULE OR PATH")
	for _, tr := range sp.Triggers {
		var what string
		switch tr.Type {
		case spec.TriggerWebhook:
			what = fmt.Sprintf("POST /hooks/%s/%s/%s on the webhook listener", p.Namespace, p.Name, tr.Name)
			if tr.Secret != nil && tr.Secret.FromCredential != "" {
				what += ", signed with credential " + tr.Secret.FromCredential
			}
		case spec.TriggerInterval:
			what = "every " + string(tr.Every)
		case spec.TriggerCron:
			what = tr.Expression + " (" + firstOf(tr.Timezone, "UTC") + ")"
		}
		t.row("  "+tr.Name, tr.Type, what)
	}
	return t.flush()
}

// engineOf names the engine of a job: its own, else the pipeline's, else
// the server's default.
func engineOf(job, pipeline *spec.Engine) string {
	e := job
	if e == nil {
		e = pipeline
	}
	if e == nil || e.Type == "" {
		return "default"
	}
	if e.Image != "" {
		return e.Type + " (" + e.Image + ")"
	}
	return e.Type
}

// clip shortens s to at most n characters, on one line.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-3]) + "..."
	}
	return s
}

// shortHash is the first 12 hex digits of a hash ("sha256:<hex>").
func shortHash(h string) string {
	h = strings.TrimPrefix(h, "sha256:")
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func newPipelineDeleteCmd(app *App, r *remote) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a pipeline",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := app.client(r)
			if err != nil {
				return err
			}
			if err := c.DeletePipeline(cmd.Context(), r.namespace, args[0]); err != nil {
				return remoteError(err)
			}
			fmt.Fprintf(app.Out, "pipeline %s/%s deleted\n", r.namespace, args[0])
			return nil
		},
	}
}

func newPipelineRunCmd(app *App, r *remote) *cobra.Command {
	var (
		params []string
		wait   bool
		poll   time.Duration
		output string
	)
	cmd := &cobra.Command{
		Use:   "run NAME",
		Short: "Start a run of a pipeline",
		Long: `Start a run of a pipeline, with parameters given as -p name=value (converted
to the types the pipeline declares). With --wait, follow the run until it ends,
print a summary, and exit 1 unless it succeeded.`,
		Example: `  palvella pipeline run deploy -p env=prod --wait`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			ps := map[string]string{}
			for _, p := range params {
				k, v, ok := strings.Cut(p, "=")
				if !ok || k == "" {
					return fmt.Errorf("-p %q: want name=value", p)
				}
				ps[k] = v
			}
			if poll <= 0 {
				return fmt.Errorf("--poll %s: must be positive", poll)
			}
			c, err := app.client(r)
			if err != nil {
				return err
			}
			run, err := c.StartRun(cmd.Context(), r.namespace, args[0], ps)
			if err != nil {
				return remoteError(err)
			}
			if !wait {
				if output == "json" {
					return writeJSON(app.Out, run)
				}
				fmt.Fprintf(app.Out, "run %s/%s started (%s)\n", run.Namespace, run.Name, run.Status)
				return nil
			}
			if output != "json" {
				fmt.Fprintf(app.Out, "run %s/%s started\n", run.Namespace, run.Name)
			}
			return app.waitRun(cmd, c, run, poll, output)
		},
	}
	cmd.Flags().StringArrayVarP(&params, "param", "p", nil, "a run parameter, name=value (repeatable)")
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the run until it ends; exit 1 unless it succeeded")
	cmd.Flags().DurationVar(&poll, "poll", time.Second, "how often --wait asks the server")
	outputFlag(cmd, &output)
	return cmd
}

// waitRun polls a run until it ends, then prints a summary. The run not
// succeeding is an exit code of 1.
func (app *App) waitRun(cmd *cobra.Command, c *client.Client, run *resource.Run, poll time.Duration, output string) error {
	told := map[approvalWait]bool{}
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	for !run.Status.Terminal() {
		for _, w := range approvalWaits(run) {
			if !told[w] && output != "json" {
				told[w] = true
				fmt.Fprintln(app.Err, w.Hint)
			}
		}
		select {
		case <-cmd.Context().Done():
			return fmt.Errorf("stopped waiting for run %s (it goes on): %w", run.Name, cmd.Context().Err())
		case <-ticker.C:
		}
		next, err := c.GetRun(cmd.Context(), run.Namespace, run.Name)
		if err != nil {
			return remoteError(err)
		}
		run = next
	}
	if output == "json" {
		if err := writeJSON(app.Out, run); err != nil {
			return err
		}
	} else if err := printRun(app.Out, run); err != nil {
		return err
	}
	if run.Status != resource.StatusSuccess {
		msg := fmt.Sprintf("run %s/%s ended with %s", run.Namespace, run.Name, run.Status)
		if run.Reason != "" {
			msg += ": " + run.Reason
		}
		return exitError{code: 1, err: errors.New(msg)}
	}
	return nil
}
