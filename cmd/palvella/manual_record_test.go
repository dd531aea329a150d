package main

import (
	"context"
	"testing"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/client"
	"github.com/palvella/palvella/core/resource"
)

// A manual run is a trigger firing like any other: it is recorded, and the
// record and the run point at each other.
func TestManualRunIsRecorded(t *testing.T) {
	s := startServer(t, "")
	s.mustCLI("pipeline", "apply", "-f", exampleFile(t, "ci.yaml"))
	s.mustCLI("pipeline", "run", "ci", "-p", "ref=refs/heads/manual", "--wait")
	_, _, code := s.cli("pipeline", "run", "ci", "-p", "nope=1")
	if code == 0 {
		t.Fatalf("a run with an unknown param started")
	}

	c, err := client.New("http://"+s.addr, s.adminToken())
	if err != nil {
		t.Fatal(err)
	}
	page, err := c.ListTriggerRecords(context.Background(), "default", "ci", api.PageRequest{Size: 50})
	if err != nil {
		t.Fatal(err)
	}
	var started, failed *resource.TriggerRecord
	for i := range page.Items {
		r := &page.Items[i]
		if r.Type != "manual" {
			continue
		}
		switch r.Outcome {
		case resource.TriggerStarted:
			started = r
		case resource.TriggerFailed:
			failed = r
		}
	}
	if started == nil || len(started.Runs) != 1 || started.Runs[0] != "ci-1" || started.Params["ref"] != "refs/heads/manual" {
		t.Fatalf("no record of the manual run ci-1: %+v", page.Items)
	}
	if run := s.run("ci-1"); run.Trigger.Record != started.Name || run.Trigger.Type != "manual" {
		t.Errorf("run ci-1's trigger = %+v, want the record %s", run.Trigger, started.Name)
	}
	if failed == nil || failed.Reason == "" {
		t.Errorf("the refused manual run has no failed record saying why: %+v", page.Items)
	}
}
