package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

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
			// The API lists runs newest first: pages are read until the
			// limit is reached.
			var runs []resource.Run
			page := api.PageRequest{Size: min(limit, api.MaxPageSize)}
			for len(runs) < limit {
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
		Long: `Show a run: its status, reason, trigger, start and duration; for each job
waiting for approval, a Waiting: line with the command that approves it; each
job and action with its status, duration and message (a job allowed retries
shows "attempt n of m", m being its retries plus one); and the jobs' outputs.`,
		Args: cobra.ExactArgs(1),
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

// printRun prints a run's summary and a table of its jobs and actions,
// the outputs of its jobs, and how to approve what waits.
func printRun(w io.Writer, run *resource.Run) error {
	fmt.Fprintf(w, "Run:       %s/%s\nPipeline:  %s (v%d)\nStatus:    %s\n", run.Namespace, run.Name, run.Pipeline, run.PipelineVersion, statusOf(run.Status))
	if run.Reason != "" {
		fmt.Fprintf(w, "Reason:    %s\n", run.Reason)
	}
	trigger := run.Trigger.Type
	if run.Trigger.By != "" {
		trigger += " by " + run.Trigger.By
	}
	fmt.Fprintf(w, "Trigger:   %s\nStarted:   %s\nDuration:  %s\n", trigger, when(run.StartedAt), duration(run.StartedAt, run.FinishedAt))
	for _, hint := range approvalHints(run) {
		fmt.Fprintf(w, "Waiting:   %s\n", hint)
	}
	fmt.Fprintln(w)
	t := newTable(w, "JOB", "ACTION", "TYPE", "STATUS", "DURATION", "MESSAGE")
	for _, j := range run.Jobs {
		st := statusOf(j.Status)
		if j.Skip != "" {
			st += " (by " + string(j.Skip) + ")"
		}
		st += attemptOf(&j)
		t.row(j.Name, "", "", st, duration(j.StartedAt, j.FinishedAt), j.Reason)
		for _, a := range j.Actions {
			t.row("", a.Name, a.Type, statusOf(a.Status), duration(a.StartedAt, a.FinishedAt), a.Message)
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	var outs []string
	for _, j := range run.Jobs {
		keys := make([]string, 0, len(j.Outputs))
		for k := range j.Outputs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v, ok := j.Outputs[k].(string)
			if !ok {
				b, _ := json.Marshal(j.Outputs[k])
				v = string(b)
			}
			if len(v) > 120 {
				v = v[:117] + "..."
			}
			outs = append(outs, fmt.Sprintf("  %s.%s = %s", j.Name, k, strings.ReplaceAll(v, "\n", "\\n")))
		}
	}
	if len(outs) > 0 {
		fmt.Fprintf(w, "\nOutputs:\n%s\n", strings.Join(outs, "\n"))
	}
	return nil
}

// attemptOf says which attempt of a job this is: " (attempt n of m)" for
// a job allowed retries once it has started, " (attempt n)" for a job
// retried with no known limit, "" otherwise.
func attemptOf(j *resource.JobStatus) string {
	switch {
	case j.MaxAttempts > 1 && j.Attempt >= 1:
		return fmt.Sprintf(" (attempt %d of %d)", j.Attempt, j.MaxAttempts)
	case j.Attempt > 1:
		return fmt.Sprintf(" (attempt %d)", j.Attempt)
	}
	return ""
}

// approvalWait is a job of a run waiting for approval, and how to approve
// it.
type approvalWait struct {
	// Job is the waiting job, Action its waiting action (when known).
	Job, Action string
	// Hint is "job J waits for approval (MESSAGE): palvella run approve ...".
	Hint string
}

// approvalWaits lists the jobs of run waiting for approval, in the run's
// order.
func approvalWaits(run *resource.Run) []approvalWait {
	var out []approvalWait
	for _, j := range run.Jobs {
		if j.Status != resource.StatusWaiting {
			continue
		}
		msg, action := "", ""
		for _, a := range j.Actions {
			if a.Status == resource.StatusWaiting {
				action = a.Name
				if a.Message != "" {
					msg = " (" + a.Message + ")"
				}
			}
		}
		out = append(out, approvalWait{Job: j.Name, Action: action,
			Hint: fmt.Sprintf("job %s waits for approval%s: palvella run approve %s --job %s -n %s (or run reject)", j.Name, msg, run.Name, j.Name, run.Namespace)})
	}
	return out
}

// approvalHints says, for each job of run waiting for approval, how to
// approve it.
func approvalHints(run *resource.Run) []string {
	var out []string
	for _, w := range approvalWaits(run) {
		out = append(out, w.Hint)
	}
	return out
}

// logTimestamp rewrites the time that starts a stored log line
// (RFC 3339 with up to nine fractional digits) to one fixed width, RFC 3339
// with milliseconds in UTC, or drops it.
func logTimestamp(line string, keep bool) string {
	i := strings.IndexByte(line, ' ')
	if i < 0 {
		return line
	}
	ts, err := time.Parse(time.RFC3339Nano, line[:i])
	if err != nil {
		return line
	}
	if !keep {
		return line[i+1:]
	}
	return ts.UTC().Format("2006-01-02T15:04:05.000Z07:00") + line[i:]
}

func newRunLogsCmd(app *App, r *remote) *cobra.Command {
	var job, action string
	var follow, noTimestamps bool
	cmd := &cobra.Command{
		Use:   "logs RUN",
		Short: "Print the logs of a run's actions, in order, each under a header",
		Long: `Print the logs of a run's actions, in order, each under a header, and for
each job waiting for approval how to approve it.

With --follow, print each line as it is written, as JOB/ACTION | TEXT, until
the run (or the job, or the action) ends; the exit code is 0 when it
succeeded and 1 otherwise. When a followed job waits for approval, a line
says so and how to approve it, once, and the follow goes on until the run
ends (interrupt it to stop following: the run goes on).`,
		Example: `  palvella run logs ci-7
  palvella run logs ci-7 --follow --job build
  palvella run logs deploy-3 --follow   # ==> job apply waits for approval: palvella run approve deploy-3 --job apply -n default (or run reject)`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := app.client(r)
			if err != nil {
				return err
			}
			if follow {
				return followRunLogs(cmd.Context(), app.Out, c, r.namespace, args[0], job, action, time.Second)
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
					sc := bufio.NewScanner(rc)
					sc.Buffer(make([]byte, 64<<10), 4<<20)
					for sc.Scan() {
						fmt.Fprintln(app.Out, logTimestamp(sc.Text(), !noTimestamps))
					}
					err = sc.Err()
					rc.Close()
					if err != nil {
						return fmt.Errorf("read the log of %s/%s: %w", j.Name, a.Name, err)
					}
				}
			}
			if action != "" && !found {
				return fmt.Errorf("run %s has no action %q", run.Name, action)
			}
			for _, w := range approvalWaits(run) {
				if job == "" || w.Job == job {
					fmt.Fprintf(app.Out, "==> %s\n", w.Hint)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&job, "job", "", "only this job")
	cmd.Flags().StringVar(&action, "action", "", "only this action")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "print lines as they are written, until the run ends; exit 1 unless it succeeded")
	cmd.Flags().BoolVar(&noTimestamps, "no-timestamps", false, "print the lines without their times (RFC 3339, milliseconds, UTC)")
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
