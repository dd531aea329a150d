package engine

import (
	"reflect"
	"testing"
	"time"
)

func TestExecRequestRoundTrip(t *testing.T) {
	in := &ExecRequest{
		WorkspaceID: "ws-1", ExecID: "e-1", Shell: []string{"bash", "-c"}, Script: "echo hi",
		Env: map[string]string{"A": "1"}, Workdir: "sub", Image: "alpine:3",
		FilesIn:  []File{{Path: "a.txt", Content: []byte{0, 1}, Mode: 0o755}},
		FilesOut: []string{"out.txt"}, Timeout: 1500 * time.Millisecond,
	}
	if got := execFromProto(execToProto(in)); !reflect.DeepEqual(got, in) {
		t.Fatalf("round trip changed the request:\n got %+v\nwant %+v", got, in)
	}
	argv := &ExecRequest{WorkspaceID: "ws-1", Command: []string{"make", "test"}}
	if got := execFromProto(execToProto(argv)); !reflect.DeepEqual(got, argv) {
		t.Fatalf("round trip changed the request:\n got %+v\nwant %+v", got, argv)
	}
}

func TestExecResultRoundTrip(t *testing.T) {
	in := &ExecResult{ExitCode: 143, TimedOut: true, Cancelled: true, FilesOut: []File{{Path: "r.xml", Content: []byte("<r/>"), Mode: 0o644}}}
	if got := resultFromProto(resultToProto(in)); !reflect.DeepEqual(got, in) {
		t.Fatalf("round trip changed the result:\n got %+v\nwant %+v", got, in)
	}
}

func TestSetupRequestRoundTrip(t *testing.T) {
	in := &SetupRequest{Options: map[string]any{"image": "alpine", "cpus": 2.0}, Namespace: "ns", Pipeline: "p", Run: "7", Job: "build"}
	p, err := setupToProto(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := setupFromProto(p); !reflect.DeepEqual(got, in) {
		t.Fatalf("round trip changed the request:\n got %+v\nwant %+v", got, in)
	}
	if _, err := setupToProto(&SetupRequest{Options: map[string]any{"bad": make(chan int)}}); err == nil {
		t.Fatalf("options that cannot travel were accepted")
	}
}
