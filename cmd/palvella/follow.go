package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/client"
	"github.com/palvella/palvella/core/events"
	"github.com/palvella/palvella/core/resource"
	"github.com/spf13/cobra"
)

// logText is the text of a stored log line "<time> <stream> <text>",
// with the stream kept when it is not stdout.
func logText(line string) string {
	parts := strings.SplitN(line, " ", 3)
	if len(parts) < 3 {
		return line
	}
	if parts[1] == "stdout" {
		return parts[2]
	}
	return "[" + parts[1] + "] " + parts[2]
}

// endError turns the end of a followed run, job or action into the exit
// code: 0 for success (or skipped), 1 otherwise.
func endError(what string, end *api.StreamEnd) error {
	if end.Status == resource.StatusSuccess || end.Status == resource.StatusSkipped {
		return nil
	}
	msg := fmt.Sprintf("%s ended with %s", what, end.Status)
	if end.Reason != "" {
		msg += ": " + end.Reason
	}
	return exitError{code: 1, err: errors.New(msg)}
}

// followRunLogs prints a run's log lines as they are written, each
// prefixed with its job and action, until the run (or the job, or the
// action) ends. Meanwhile it asks for the run every poll and, when a
// followed job waits for approval, prints once how to approve it; the
// follow goes on.
func followRunLogs(ctx context.Context, w io.Writer, c *client.Client, ns, run, job, action string, poll time.Duration) error {
	if action != "" && job == "" {
		return fmt.Errorf("--follow --action needs --job")
	}
	var mu sync.Mutex // one writer at a time: the lines and the hints
	pollCtx, stopPolling := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		told := map[approvalWait]bool{}
		ticker := time.NewTicker(poll)
		defer ticker.Stop()
		for {
			// Without the run the follow goes on: the hints are a help.
			if r, err := c.GetRun(pollCtx, ns, run); err == nil {
				for _, wt := range approvalWaits(r) {
					if (job == "" || wt.Job == job) && !told[wt] {
						told[wt] = true
						mu.Lock()
						fmt.Fprintf(w, "==> %s\n", wt.Hint)
						mu.Unlock()
					}
				}
				if r.Status.Terminal() {
					return
				}
			}
			select {
			case <-pollCtx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
	end, err := c.FollowLogs(ctx, ns, run, job, action, func(l api.LogLine) error {
		mu.Lock()
		defer mu.Unlock()
		_, err := fmt.Fprintf(w, "%s/%s | %s\n", l.Job, l.Action, logText(l.Line))
		return err
	})
	stopPolling()
	<-polled
	if err != nil {
		return remoteError(err)
	}
	what := "run " + run
	if job != "" {
		what = "job " + job + " of run " + run
	}
	return endError(what, end)
}

func newRunWatchCmd(app *App, r *remote) *cobra.Command {
	var lines int
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "watch RUN",
		Short: "Watch a whole run in one view: each job's status, duration and last lines, until it ends",
		Long: `Watch a run: each job with its status, duration and last log lines, updated
until the run ends, then a summary. On a terminal the view is redrawn in place,
its last frame keeping the last lines of each job; otherwise each change is
printed as a line and the final view at the end. A job waiting for approval
is shown with the command that approves it. The exit code is 0 when the run
succeeded, 1 otherwise.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := app.client(r)
			if err != nil {
				return err
			}
			return watchRun(cmd.Context(), app.Out, isTerminal(app.Out), c, r.namespace, args[0], lines, every)
		},
	}
	cmd.Flags().IntVar(&lines, "lines", 3, "last log lines shown per job")
	cmd.Flags().DurationVar(&every, "interval", time.Second, "how often the view is refreshed")
	return cmd
}

// tails keeps the last lines of each job's log.
type tails struct {
	mu    sync.Mutex
	n     int
	lines map[string][]string
}

func (t *tails) add(l api.LogLine) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := append(t.lines[l.Job], l.Action+": "+logText(l.Line))
	if len(s) > t.n {
		s = s[len(s)-t.n:]
	}
	t.lines[l.Job] = s
}

func (t *tails) of(job string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.lines[job]...)
}

func watchRun(ctx context.Context, w io.Writer, tty bool, c *client.Client, ns, name string, lines int, every time.Duration) error {
	run, err := c.GetRun(ctx, ns, name)
	if err != nil {
		return remoteError(err)
	}
	tl := &tails{n: max(lines, 0), lines: map[string][]string{}}
	logCtx, stopLogs := context.WithCancel(ctx)
	defer stopLogs()
	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		_, _ = c.FollowLogs(logCtx, ns, name, "", "", func(l api.LogLine) error { tl.add(l); return nil }) // the view goes on without logs
	}()
	seen := map[string]resource.Status{}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		if tty {
			fmt.Fprint(w, "\x1b[H\x1b[2J")
			printWatchView(w, run, tl)
		} else {
			printChanges(w, run, seen)
		}
		if run.Status.Terminal() {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped watching run %s (it goes on): %w", name, ctx.Err())
		case <-ticker.C:
		}
		if run, err = c.GetRun(ctx, ns, name); err != nil {
			return remoteError(err)
		}
	}
	// Let the log stream deliver the last lines before the final view.
	select {
	case <-logsDone:
	case <-time.After(2 * time.Second):
	}
	if tty {
		// The frame drawn when the run ended may have come before its
		// last lines: the final frame has them.
		fmt.Fprint(w, "\x1b[H\x1b[2J")
	} else {
		fmt.Fprintln(w)
	}
	printWatchView(w, run, tl)
	fmt.Fprintf(w, "\nRun %s/%s %s in %s", run.Namespace, run.Name, run.Status, duration(run.QueuedAt, run.FinishedAt))
	counts := map[resource.Status]int{}
	for _, j := range run.Jobs {
		counts[j.Status]++
	}
	var parts []string
	for _, st := range []resource.Status{resource.StatusSuccess, resource.StatusFailure, resource.StatusSkipped, resource.StatusCancelled} {
		if counts[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
		}
	}
	fmt.Fprintf(w, ": %d jobs (%s)\n", len(run.Jobs), strings.Join(parts, ", "))
	return endError("run "+run.Name, &api.StreamEnd{Status: run.Status, Reason: run.Reason})
}

// printChanges prints one line per job whose status changed since the
// last call, and one for the run.
func printChanges(w io.Writer, run *resource.Run, seen map[string]resource.Status) {
	stamp := time.Now().Format("15:04:05")
	if seen["\x00run"] != run.Status {
		seen["\x00run"] = run.Status
		fmt.Fprintf(w, "%s run %s %s\n", stamp, run.Name, run.Status)
	}
	waits := map[string]string{}
	for _, wt := range approvalWaits(run) {
		waits[wt.Job] = wt.Hint
	}
	for _, j := range run.Jobs {
		if seen[j.Name] != j.Status {
			seen[j.Name] = j.Status
			fmt.Fprintf(w, "%s job %s %s%s\n", stamp, j.Name, j.Status, attemptOf(&j))
			if hint, ok := waits[j.Name]; ok {
				fmt.Fprintf(w, "%s %s\n", stamp, hint)
			}
		}
	}
}

// printWatchView prints the run's jobs with status, duration and last
// lines.
func printWatchView(w io.Writer, run *resource.Run, tl *tails) {
	fmt.Fprintf(w, "Run %s/%s  %s  %s\n\n", run.Namespace, run.Name, run.Status, duration(run.QueuedAt, run.FinishedAt))
	width := len("JOB")
	for _, j := range run.Jobs {
		width = max(width, len(j.Name))
	}
	fmt.Fprintf(w, "%-*s  %-9s  %s\n", width, "JOB", "STATUS", "DURATION")
	for _, j := range run.Jobs {
		fmt.Fprintf(w, "%-*s  %-9s  %s%s\n", width, j.Name, j.Status, duration(j.StartedAt, j.FinishedAt), attemptOf(&j))
		for _, l := range tl.of(j.Name) {
			fmt.Fprintf(w, "%*s  | %s\n", width, "", l)
		}
	}
	if hints := approvalHints(run); len(hints) > 0 {
		fmt.Fprintln(w)
		for _, h := range hints {
			fmt.Fprintf(w, "==> %s\n", h)
		}
	}
}

func newRunTimelineCmd(app *App, r *remote) *cobra.Command {
	var output string
	var width int
	cmd := &cobra.Command{
		Use:   "timeline RUN",
		Short: "Show a run's jobs and actions on a time axis, with queue wait and run time",
		Long: `Show a text Gantt chart of a run: one row per job and per action, on a time
axis from the run's queueing to its end. '.' is time a job waited in the
queue, '#' time it ran, '=' time an action ran.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := app.remoteClient(r, output)
			if err != nil {
				return err
			}
			tl, err := c.Timeline(cmd.Context(), r.namespace, args[0])
			if err != nil {
				return remoteError(err)
			}
			if output == "json" {
				return writeJSON(app.Out, tl)
			}
			return printTimeline(app.Out, tl, width)
		},
	}
	outputFlag(cmd, &output)
	cmd.Flags().IntVar(&width, "width", 50, "columns of the time axis")
	return cmd
}

// printTimeline draws a timeline as text.
func printTimeline(w io.Writer, tl *api.Timeline, width int) error {
	width = max(width, 10)
	if tl.QueuedAt == nil {
		fmt.Fprintf(w, "Run %s has not been queued.\n", tl.Run)
		return nil
	}
	start := *tl.QueuedAt
	total := time.Duration(tl.DurationMs) * time.Millisecond
	if total <= 0 {
		total = time.Millisecond
	}
	col := func(t time.Time) int {
		c := int(float64(t.Sub(start)) / float64(total) * float64(width))
		return min(max(c, 0), width)
	}
	endOf := func(t *time.Time) time.Time {
		if t != nil {
			return *t
		}
		return start.Add(total)
	}
	ms := func(v int64) string { return (time.Duration(v) * time.Millisecond).String() }
	name := len("JOB / ACTION")
	for _, j := range tl.Jobs {
		name = max(name, len(j.Name))
		for _, a := range j.Actions {
			name = max(name, len(a.Name)+2)
		}
	}
	fmt.Fprintf(w, "Run %s  %s  %s\n\n", tl.Run, tl.Status, ms(tl.DurationMs))
	axis := "0s" + strings.Repeat(" ", max(width-2-len(total.Round(time.Millisecond).String()), 1)) + total.Round(time.Millisecond).String()
	fmt.Fprintf(w, "%-*s  |%s|  %-9s  %10s  %10s\n", name, "JOB / ACTION", axis, "STATUS", "WAIT", "RUN")
	bar := func(spans ...span) string {
		b := []byte(strings.Repeat(" ", width))
		for _, s := range spans {
			from, to := col(s.from), col(s.to)
			if to == from && to < width {
				to = from + 1
			}
			for i := from; i < to; i++ {
				b[i] = s.mark
			}
		}
		return string(b)
	}
	for _, j := range tl.Jobs {
		var spans []span
		if j.QueuedAt != nil {
			spans = append(spans, span{*j.QueuedAt, endOf(firstTime(j.StartedAt, j.FinishedAt)), '.'})
		}
		if j.StartedAt != nil {
			spans = append(spans, span{*j.StartedAt, endOf(j.FinishedAt), '#'})
		}
		fmt.Fprintf(w, "%-*s  |%s|  %-9s  %10s  %10s\n", name, j.Name, bar(spans...), j.Status, ms(j.QueueWaitMs), ms(j.RunMs))
		for _, a := range j.Actions {
			var as []span
			if a.StartedAt != nil {
				as = append(as, span{*a.StartedAt, endOf(a.FinishedAt), '='})
			}
			fmt.Fprintf(w, "%-*s  |%s|  %-9s  %10s  %10s\n", name, "  "+a.Name, bar(as...), a.Status, "", ms(a.RunMs))
		}
	}
	return nil
}

type span struct {
	from, to time.Time
	mark     byte
}

func firstTime(ts ...*time.Time) *time.Time {
	for _, t := range ts {
		if t != nil {
			return t
		}
	}
	return nil
}

func newRunDumpCmd(app *App, r *remote) *cobra.Command {
	return &cobra.Command{
		Use:   "dump RUN",
		Short: "Print everything about a run as JSON, for a bug report (credential values masked)",
		Long: `Print everything about a run in one JSON document: the pipeline version it
ran (spec and source), its params, trigger and trigger record, every status
with its timestamps, outputs, the timeline and every action's log. Credential
values are masked: logs are masked when written and literal webhook secrets
in the pipeline are replaced.`,
		Example: `  palvella run dump ci-42 > ci-42.json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := app.client(r)
			if err != nil {
				return err
			}
			d, err := c.DumpRun(cmd.Context(), r.namespace, args[0])
			if err != nil {
				return remoteError(err)
			}
			return writeJSON(app.Out, d)
		},
	}
}

func newEventsCmd(app *App) *cobra.Command {
	r := &remote{}
	var pipeline, output string
	var follow, all bool
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Print the server's events: runs, jobs, actions, approvals, triggers and plugins",
		Long: `Print the events of a namespace (-n, default "default"; --all-namespaces for
every namespace and the plugin events). Without --follow, print the recent
events the server keeps; with --follow, print them as they happen until
interrupted.`,
		Example: `  palvella events --follow
  palvella events --follow --pipeline ci -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := app.remoteClient(r, output)
			if err != nil {
				return err
			}
			req := client.EventsRequest{Namespace: r.namespace, Pipeline: pipeline, Once: !follow}
			if all {
				req.Namespace = ""
			}
			err = c.Events(cmd.Context(), req, func(e events.Event) error {
				if output == "json" {
					return writeJSON(app.Out, e)
				}
				_, err := fmt.Fprintln(app.Out, formatEvent(e))
				return err
			})
			if err != nil && cmd.Context().Err() == nil {
				return remoteError(err)
			}
			return nil
		},
	}
	remoteFlags(cmd, r)
	cmd.Flags().StringVar(&pipeline, "pipeline", "", "only this pipeline's events")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "print events as they happen until interrupted")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "events of every namespace, and plugin events")
	outputFlag(cmd, &output)
	return cmd
}

// formatEvent writes an event as one line.
func formatEvent(e events.Event) string {
	var subject []string
	for _, s := range []string{e.Run, e.Job, e.Action} {
		if s != "" {
			subject = append(subject, s)
		}
	}
	what := strings.Join(subject, "/")
	switch e.Type {
	case events.TypeTrigger:
		what = e.Pipeline + "." + e.Trigger
		if e.Run != "" {
			what += " -> " + e.Run
		}
	case events.TypePlugin:
		what = e.Plugin
	}
	line := fmt.Sprintf("%s %-8s %-9s %s", e.Time.Local().Format("15:04:05.000"), e.Type, e.Status, what)
	if e.Namespace != "" && e.Namespace != "default" {
		line += " (" + e.Namespace + ")"
	}
	if e.Reason != "" {
		line += ": " + e.Reason
	}
	return line
}
