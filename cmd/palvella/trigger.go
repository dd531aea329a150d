package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/spf13/cobra"
)

func newTriggerCmd(app *App) *cobra.Command {
	r := &remote{}
	cmd := &cobra.Command{
		Use:   "trigger",
		Short: "Show trigger records: each firing of a trigger and what came of it",
		Long: `Every firing of a trigger (a webhook call, an interval or cron tick, a manual
run) is recorded with its outcome: started (the runs it started), rejected (a
webhook call refused: no or a wrong signature, a replay, too large...),
dropped (no pipeline or trigger matched) or failed (the run could not be
started), and why. The server keeps records for --trigger-record-retention
(30 days by default) and at most --trigger-records-per-pipeline per pipeline.
The triggers of a pipeline are listed by palvella pipeline get NAME.`,
	}
	remoteFlags(cmd, r)
	cmd.AddCommand(newTriggerRecordsCmd(app, r), newTriggerRecordCmd(app, r))
	return cmd
}

func newTriggerRecordsCmd(app *App, r *remote) *cobra.Command {
	var output string
	var limit int
	cmd := &cobra.Command{
		Use:   "records [PIPELINE]",
		Short: "List trigger records, newest first, of a namespace or of one pipeline",
		Long: `List the trigger records of a namespace (-n, default "default"), or of one
pipeline, newest first: when the firing came, the pipeline, the trigger and its
type, the outcome, the runs it started and why it was rejected, dropped or
failed. palvella trigger record NAME shows one record in full.`,
		Example: `  palvella trigger records
  palvella trigger records ci --limit 10
  palvella trigger records -n team-a -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 {
				return fmt.Errorf("--limit %d: must be at least 1", limit)
			}
			c, err := app.remoteClient(r, output)
			if err != nil {
				return err
			}
			pipeline := ""
			if len(args) == 1 {
				pipeline = args[0]
			}
			// Records are listed oldest first (their names start with
			// their time): every page is read before the newest are kept.
			var recs []resource.TriggerRecord
			page := api.PageRequest{Size: api.MaxPageSize}
			for {
				p, err := c.ListTriggerRecords(cmd.Context(), r.namespace, pipeline, page)
				if err != nil {
					return remoteError(err)
				}
				recs = append(recs, p.Items...)
				if p.NextPageToken == "" {
					break
				}
				page.Token = p.NextPageToken
			}
			sort.SliceStable(recs, func(i, j int) bool {
				a, b := recs[i], recs[j]
				if !a.FiredAt.Equal(b.FiredAt) {
					return a.FiredAt.After(b.FiredAt)
				}
				return a.Name > b.Name
			})
			if len(recs) > limit {
				recs = recs[:limit]
			}
			if output == "json" {
				if recs == nil {
					recs = []resource.TriggerRecord{}
				}
				return writeJSON(app.Out, recs)
			}
			t := newTable(app.Out, "TIME", "PIPELINE", "TRIGGER", "TYPE", "OUTCOME", "RUNS", "RECORD", "REASON")
			for _, rec := range recs {
				t.row(when(&rec.FiredAt), rec.Pipeline, orDash(rec.Trigger), rec.Type, rec.Outcome,
					orDash(strings.Join(rec.Runs, ",")), rec.Name, clip(rec.Reason, 100))
			}
			return t.flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many records, the newest")
	outputFlag(cmd, &output)
	return cmd
}

func newTriggerRecordCmd(app *App, r *remote) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "record NAME",
		Short: "Show one trigger record in full",
		Long: `Show one trigger record (NAME as palvella trigger records lists it): the firing,
its outcome and reason, the runs it started, the params it mapped, and for a
webhook call its delivery ID and selected headers.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := app.remoteClient(r, output)
			if err != nil {
				return err
			}
			rec, err := c.GetTriggerRecord(cmd.Context(), r.namespace, args[0])
			if errors.Is(err, sdk.ErrNotFound) {
				return fmt.Errorf("namespace %s has no trigger record %q (palvella trigger records lists them)", r.namespace, args[0])
			}
			if err != nil {
				return remoteError(err)
			}
			if output == "json" {
				return writeJSON(app.Out, rec)
			}
			printTriggerRecord(app.Out, rec)
			return nil
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

// printTriggerRecord prints a record, one field a line.
func printTriggerRecord(w io.Writer, rec *resource.TriggerRecord) {
	fmt.Fprintf(w, "Record:    %s/%s\nPipeline:  %s\nTrigger:   %s (%s)\nFired:     %s\n",
		rec.Namespace, rec.Name, rec.Pipeline, orDash(rec.Trigger), rec.Type, when(&rec.FiredAt))
	if rec.Due != nil {
		fmt.Fprintf(w, "Due:       %s\n", when(rec.Due))
	}
	fmt.Fprintf(w, "Outcome:   %s\n", rec.Outcome)
	if rec.Reason != "" {
		fmt.Fprintf(w, "Reason:    %s\n", rec.Reason)
	}
	if len(rec.Runs) > 0 {
		fmt.Fprintf(w, "Runs:      %s\n", strings.Join(rec.Runs, ", "))
	}
	if rec.DeliveryID != "" {
		fmt.Fprintf(w, "Delivery:  %s\n", rec.DeliveryID)
	}
	printMap(w, "Params:", rec.Params)
	printMap(w, "Headers:", rec.Headers)
}

// printMap prints a map under a title, one key a line in key order.
func printMap(w io.Writer, title string, m map[string]string) {
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintln(w, title)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s = %s\n", k, m[k])
	}
}
