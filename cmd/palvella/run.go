package main

import (
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/spf13/cobra"
)

func newRunCmd(app *App) *cobra.Command {
	r := &remote{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "List, show, follow, approve, reject and cancel runs",
		Long: `A run is one execution of a pipeline, named PIPELINE-NUMBER. Start one with
palvella pipeline run NAME.`,
	}
	remoteFlags(cmd, r)
	cmd.AddCommand(newRunListCmd(app, r), newRunGetCmd(app, r), newRunLogsCmd(app, r),
		newRunDecideCmd(app, r, true), newRunDecideCmd(app, r, false), newRunCancelCmd(app, r),
		newRunWatchCmd(app, r), newRunTimelineCmd(app, r), newRunDumpCmd(app, r))
	return cmd
}

func newRunListCmd(app *App, r *remote) *cobra.Command {
	var pipeline, output string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List runs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if limit < 1 {
				return fmt.Errorf("--limit %d: must be at least 1", limit)
			}
			c, err := app.client(r)
			if err != nil {
				return err
			}
			// The API lists runs in its store's key order; newest first is
			// by creation, so every page is read before the limit applies.
			var runs []resource.Run
			page := api.PageRequest{Size: api.MaxPageSize}
			for {
				p, err := c.ListRuns(cmd.Context(), r.namespace, pipeline, page)
				if err != nil {
					return remoteError(err)
				}
				runs = append(runs, p.Items...)
				if p.NextPageToken == "" {
					break
				}
				page.Token = p.NextPageToken
			}
			sortNewestFirst(runs)
			if len(runs) > limit {
				runs = runs[:limit]
			}
			if output == "json" {
				if runs == nil {
					runs = []resource.Run{}
				}
				return writeJSON(app.Out, runs)
			}
			t := newTable(app.Out, "NAME", "PIPELINE", "VERSION", "STATUS", "TRIGGER", "STARTED", "DURATION")
			for _, run := range runs {
				t.row(run.Name, run.Pipeline, fmt.Sprintf("v%d", run.PipelineVersion), statusOf(run.Status), run.Trigger.Type,
					when(run.StartedAt), duration(run.StartedAt, run.FinishedAt))
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVar(&pipeline, "pipeline", "", "only the runs of this pipeline")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many runs")
	outputFlag(cmd, &output)
	return cmd
}

// sortNewestFirst orders runs by creation, newest first; runs of one
// pipeline created in the same instant by their number.
func sortNewestFirst(runs []resource.Run) {
	sort.SliceStable(runs, func(i, j int) bool {
		a, b := runs[i], runs[j]
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.After(b.CreatedAt)
		}
		if a.Pipeline == b.Pipeline {
			return a.Number > b.Number
		}
		return a.Name < b.Name
	})
}

func newRunGetCmd(app *App, r *remote) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "get RUN",
		Short: "Show a run: each job and action with its status and duration",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := app.remoteClient(r, output)
			if err != nil {
				return err
			}
			run, err := c.GetRun(cmd.Context(), r.namespace, args[0])
			if err != nil {
				return remoteError(err)
			}
			if output == "json" {
				return writeJSON(app.Out, run)
			}
			return printRun(app.Out, run)
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

// printRun prints a run's summary and a table of its jobs and actions.
func printRun(w io.Writer, run *resource.Run) error {
	fmt.Fprintf(w, "Run:       %s/%s\nPipeline:  %s (v%d)\nStatus:    %s\n", run.Namespace, run.Name, run.Pipeline, run.PipelineVersion, statusOf(run.Status))
	if run.Reason != "" {
		fmt.Fprintf(w, "Reason:    %s\n", run.Reason)
	}
	trigger := run.Trigger.Type
	if run.Trigger.By != "" {
		trigger += " by " + run.Trigger.By
	}
	fmt.Fprintf(w, "Trigger:   %s\nStarted:   %s\nDuration:  %s\n\n", trigger, when(run.StartedAt), duration(run.StartedAt, run.FinishedAt))
	t := newTable(w, "JOB", "ACTION", "TYPE", "STATUS", "DURATION", "MESSAGE")
	for _, j := range run.Jobs {
		st := statusOf(j.Status)
		if j.Skip != "" {
			st += " (by " + string(j.Skip) + ")"
		}
		t.row(j.Name, "", "", st, duration(j.StartedAt, j.FinishedAt), j.Reason)
		for _, a := range j.Actions {
			t.row("", a.Name, a.Type, statusOf(a.Status), duration(a.StartedAt, a.FinishedAt), a.Message)
		}
	}
	return t.flush()
}

func newRunLogsCmd(app *App, r *remote) *cobra.Command {
	var job, action string
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs RUN",
		Short: "Print the logs of a run's actions, in order, each under a header",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := app.client(r)
			if err != nil {
				return err
			}
			if follow {
				return followRunLogs(cmd.Context(), app.Out, c, r.namespace, args[0], job, action)
			}
			run, err := c.GetRun(cmd.Context(), r.namespace, args[0])
			if err != nil {
				return remoteError(err)
			}
			if job != "" && run.Job(job) == nil {
				return fmt.Errorf("run %s has no job %q", run.Name, job)
			}
			found := false
			for _, j := range run.Jobs {
				if job != "" && j.Name != job {
					continue
				}
				for _, a := range j.Actions {
					if action != "" && a.Name != action {
						continue
					}
					found = true
					fmt.Fprintf(app.Out, "==> %s / %s (%s) <==\n", j.Name, a.Name, statusOf(a.Status))
					if a.Status == resource.StatusPending || a.Status == resource.StatusQueued {
						fmt.Fprintln(app.Out, "(not started)")
						continue
					}
					rc, err := c.ActionLog(cmd.Context(), run.Namespace, run.Name, j.Name, a.Name)
					if errors.Is(err, sdk.ErrNotFound) {
						fmt.Fprintln(app.Out, "(no log)")
						continue
					}
					if err != nil {
						return remoteError(err)
					}
					_, err = io.Copy(app.Out, rc)
					rc.Close()
					if err != nil {
						return fmt.Errorf("read the log of %s/%s: %w", j.Name, a.Name, err)
					}
				}
			}
			if action != "" && !found {
				return fmt.Errorf("run %s has no action %q", run.Name, action)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&job, "job", "", "only this job")
	cmd.Flags().StringVar(&action, "action", "", "only this action")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "print lines as they are written, until the run ends; exit 1 unless it succeeded")
	return cmd
}

func newRunDecideCmd(app *App, r *remote, approve bool) *cobra.Command {
	var job, comment, output string
	verb, done := "approve", "approved"
	if !approve {
		verb, done = "reject", "rejected"
	}
	cmd := &cobra.Command{
		Use:   verb + " RUN",
		Short: fmt.Sprintf("%s a job of a run waiting for approval", map[bool]string{true: "Approve", false: "Reject"}[approve]),
		Long: `Without --job, the decision is about the only job of the run waiting for
approval; when several wait, name one.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := app.remoteClient(r, output)
			if err != nil {
				return err
			}
			run, err := c.Decide(cmd.Context(), r.namespace, args[0], job, approve, comment)
			if err != nil {
				return remoteError(err)
			}
			if output == "json" {
				return writeJSON(app.Out, run)
			}
			what := "the waiting job"
			if job != "" {
				what = "job " + job
			}
			fmt.Fprintf(app.Out, "%s %s of run %s/%s (run %s)\n", done, what, run.Namespace, run.Name, statusOf(run.Status))
			return nil
		},
	}
	cmd.Flags().StringVar(&job, "job", "", "the job to decide")
	cmd.Flags().StringVar(&comment, "comment", "", "a comment kept with the decision")
	outputFlag(cmd, &output)
	return cmd
}

func newRunCancelCmd(app *App, r *remote) *cobra.Command {
	var reason, output string
	cmd := &cobra.Command{
		Use:   "cancel RUN",
		Short: "Cancel a run",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := app.remoteClient(r, output)
			if err != nil {
				return err
			}
			run, err := c.CancelRun(cmd.Context(), r.namespace, args[0], reason)
			if err != nil {
				return remoteError(err)
			}
			if output == "json" {
				return writeJSON(app.Out, run)
			}
			fmt.Fprintf(app.Out, "run %s/%s %s\n", run.Namespace, run.Name, statusOf(run.Status))
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, kept with the run")
	outputFlag(cmd, &output)
	return cmd
}
