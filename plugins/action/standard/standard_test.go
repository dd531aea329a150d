package standard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/action"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
)

func newConfigured(t *testing.T, host sdk.Host, config map[string]any) *Plugin {
	t.Helper()
	p := New()
	resp, err := p.Configure(context.Background(), &sdk.ConfigureRequest{Config: config, Host: host})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if len(resp.Diagnostics) > 0 {
		t.Fatalf("Configure: %+v", resp.Diagnostics)
	}
	return p
}

func TestConformance(t *testing.T) {
	sdktest.RunBoth(t, func(t *testing.T) action.Action {
		return newConfigured(t, sdktest.NewLocalHost(t.TempDir()), nil)
	}, action.Service, sdktest.ActionSuite)
}

// run runs one action on p, in-process and over gRPC, and hands each
// result to check.
func run(t *testing.T, p *Plugin, req *action.RunRequest, check func(t *testing.T, res *action.Result, rec *sdktest.Recorder, err error)) {
	t.Helper()
	for _, mode := range []string{"in-process", "grpc"} {
		t.Run(mode, func(t *testing.T) {
			var a action.Action = p
			if mode == "grpc" {
				a = sdktest.OverGRPC[action.Action](t, p, action.Service)
			}
			rec := &sdktest.Recorder{}
			res, err := a.Run(context.Background(), req, rec)
			check(t, res, rec, err)
		})
	}
}

func number(v any) float64 {
	switch n := v.(type) {
	case int:
		return float64(n)
	case float64:
		return n
	}
	return -1
}

func TestRunScriptStreamsLogsAndOutputs(t *testing.T) {
	// The outputs file comes back with the command's result, or, from a
	// host that does not return files, through a second command.
	for _, older := range []bool{false, true} {
		t.Run(fmt.Sprintf("host without files out: %v", older), func(t *testing.T) {
			host := sdktest.NewLocalHost(t.TempDir())
			host.NoFilesOut = older
			testRunScriptStreamsLogsAndOutputs(t, host)
		})
	}
}

func testRunScriptStreamsLogsAndOutputs(t *testing.T, host *sdktest.LocalHost) {
	p := newConfigured(t, host, nil)
	script := `echo first
echo "to stderr" >&2
printf 'no newline'
echo "version=3.18.0" >> "$PALVELLA_OUTPUT"
echo "changed=true" >> "$PALVELLA_OUTPUT"
printf 'notes<<EOF\nline one\nline two\nEOF\n' >> "$PALVELLA_OUTPUT"
echo " and $GREETING"`
	run(t, p, &action.RunRequest{Type: "run", Name: "build", Params: map[string]any{"run": script, "env": map[string]any{"GREETING": "hello", "N": 3.0}}},
		func(t *testing.T, res *action.Result, rec *sdktest.Recorder, err error) {
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.Status != action.StatusSuccess {
				t.Fatalf("status = %s (%s), want success", res.Status, res.Message)
			}
			if got := res.Outputs["stdout"]; got != "first\nno newline and hello" {
				t.Errorf("stdout = %q", got)
			}
			if number(res.Outputs["exit_code"]) != 0 {
				t.Errorf("exit_code = %v, want 0", res.Outputs["exit_code"])
			}
			if res.Outputs["version"] != "3.18.0" || res.Outputs["changed"] != true || res.Outputs["notes"] != "line one\nline two" {
				t.Errorf("outputs from $PALVELLA_OUTPUT = %v", res.Outputs)
			}
			var stdout, stderr []string
			for _, l := range rec.Lines() {
				switch l.Stream {
				case "stdout":
					stdout = append(stdout, l.Text)
				case "stderr":
					stderr = append(stderr, l.Text)
				}
			}
			if fmt.Sprint(stdout) != "[first no newline and hello]" || fmt.Sprint(stderr) != "[to stderr]" {
				t.Errorf("log lines: stdout %q, stderr %q", stdout, stderr)
			}
			if rec.Outputs()["version"] != "3.18.0" {
				t.Errorf("outputs were not streamed as events: %v", rec.Outputs())
			}
		})
}

func TestRunScriptNonZeroExitFails(t *testing.T) {
	p := newConfigured(t, sdktest.NewLocalHost(t.TempDir()), nil)
	run(t, p, &action.RunRequest{Type: "run", Name: "broken", Params: map[string]any{"run": "echo partial=yes >> \"$PALVELLA_OUTPUT\"; echo oops; exit 3"}},
		func(t *testing.T, res *action.Result, _ *sdktest.Recorder, err error) {
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.Status != action.StatusFailure || !strings.Contains(res.Message, "3") {
				t.Fatalf("result = %s %q, want failure mentioning exit code 3", res.Status, res.Message)
			}
			if number(res.Outputs["exit_code"]) != 3 || res.Outputs["stdout"] != "oops" || res.Outputs["partial"] != "yes" {
				t.Fatalf("outputs = %v", res.Outputs)
			}
		})
}

func TestRunScriptShell(t *testing.T) {
	p := newConfigured(t, sdktest.NewLocalHost(t.TempDir()), nil)
	// The default shell stops at the first failing command; a shell given
	// without -e does not.
	for _, tc := range []struct {
		shell any
		want  action.Status
	}{
		{nil, action.StatusFailure},
		{"sh", action.StatusFailure},
		{[]any{"sh", "-c"}, action.StatusSuccess},
	} {
		params := map[string]any{"run": "false\necho after"}
		if tc.shell != nil {
			params["shell"] = tc.shell
		}
		res, err := p.Run(context.Background(), &action.RunRequest{Type: "run", Name: "s", Params: params}, nil)
		if err != nil {
			t.Fatalf("shell %v: %v", tc.shell, err)
		}
		if res.Status != tc.want {
			t.Errorf("shell %v: status %s, want %s", tc.shell, res.Status, tc.want)
		}
	}
}

func TestRunScriptWorkdir(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := newConfigured(t, sdktest.NewLocalHost(dir), nil)
	res, err := p.Run(context.Background(), &action.RunRequest{Type: "run", Name: "w", Params: map[string]any{
		"workdir": "sub", "run": `cd / && echo dir=$(basename "$OLDPWD") >> "$PALVELLA_OUTPUT"`,
	}}, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Status != action.StatusSuccess || res.Outputs["dir"] != "sub" {
		t.Fatalf("result %s %q outputs %v: want the script to start in sub and find $PALVELLA_OUTPUT after cd", res.Status, res.Message, res.Outputs)
	}
	// One outputs file serves every action of a job; each empties it first,
	// so a second action does not see the first one's outputs.
	res, err = p.Run(context.Background(), &action.RunRequest{Type: "run", Name: "w2", Params: map[string]any{"workdir": "sub", "run": "true"}}, nil)
	if err != nil {
		t.Fatalf("second Run: %v", err)
	}
	if _, leaked := res.Outputs["dir"]; leaked {
		t.Errorf("the second action got the first one's outputs: %v", res.Outputs)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "sub")); len(entries) > 1 {
		t.Errorf("the workspace holds more than the outputs file: %v", entries)
	}
}

func TestRunScriptKeepsTheTailOfStdout(t *testing.T) {
	p := newConfigured(t, sdktest.NewLocalHost(t.TempDir()), nil)
	// 200 KiB of lines, then a last line.
	script := `i=0; while [ $i -lt 3200 ]; do printf '%063d\n' $i; i=$((i+1)); done; echo THE-END`
	res, err := p.Run(context.Background(), &action.RunRequest{Type: "run", Name: "big", Params: map[string]any{"run": script}}, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	out, _ := res.Outputs["stdout"].(string)
	if len(out) > MaxStdout || len(out) < MaxStdout-100 {
		t.Fatalf("stdout output is %d bytes, want about %d", len(out), MaxStdout)
	}
	if !strings.HasSuffix(out, "\nTHE-END") {
		t.Fatalf("stdout output does not end with the last line: ...%q", out[len(out)-40:])
	}
}

func TestRunScriptBadOutputsFileFails(t *testing.T) {
	p := newConfigured(t, sdktest.NewLocalHost(t.TempDir()), nil)
	res, err := p.Run(context.Background(), &action.RunRequest{Type: "run", Name: "bad", Params: map[string]any{"run": `echo "not an output" >> "$PALVELLA_OUTPUT"`}}, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Status != action.StatusFailure || !strings.Contains(res.Message, "line 1") {
		t.Fatalf("result = %s %q, want failure naming line 1 of the outputs file", res.Status, res.Message)
	}
}

func TestRunWithoutHostIsAFailedPrecondition(t *testing.T) {
	for _, mode := range []string{"in-process", "grpc"} {
		var a action.Action = New()
		if mode == "grpc" {
			a = sdktest.OverGRPC[action.Action](t, New(), action.Service)
		}
		_, err := a.Run(context.Background(), &action.RunRequest{Type: "run", Name: "r", Params: map[string]any{"run": "true"}}, nil)
		if !errors.Is(err, sdk.ErrFailedPrecondition) || !strings.Contains(err.Error(), "engine") {
			t.Errorf("%s: Run without a host: error = %v, want ErrFailedPrecondition about the engine", mode, err)
		}
	}
}

// The host services travel through the go-plugin broker and carry the
// execution the core sent with the request.
func TestRunUsesTheHostOverTheBrokerWithTheExecution(t *testing.T) {
	host := sdktest.NewLocalHost(t.TempDir())
	client := sdktest.OverGRPC[action.Action](t, New(), action.Service)
	if _, err := client.Configure(context.Background(), &sdk.ConfigureRequest{Host: host}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	ref := sdk.ExecutionRef{Namespace: "default", Pipeline: "p", Run: "run-7", Job: "build", Action: "compile", Attempt: 2}
	res, err := client.Run(context.Background(), &action.RunRequest{Type: "run", Name: "compile", Params: map[string]any{"run": "echo ok"}, Ref: ref}, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Status != action.StatusSuccess || res.Outputs["stdout"] != "ok" {
		t.Fatalf("result = %+v", res)
	}
	refs := host.Refs()
	if len(refs) == 0 {
		t.Fatal("the host saw no Exec")
	}
	for _, got := range refs {
		if got != ref {
			t.Fatalf("host Exec carried execution %+v, want %+v", got, ref)
		}
	}
}

func TestRunCancelled(t *testing.T) {
	p := newConfigured(t, sdktest.NewLocalHost(t.TempDir()), nil)
	ctx, cancel := context.WithCancel(context.Background())
	events := &cancelOnLine{cancel: cancel}
	_, err := p.Run(ctx, &action.RunRequest{Type: "run", Name: "long", Params: map[string]any{"run": "echo started; exec sleep 60"}}, events)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run cancelled while the script runs: error = %v, want context.Canceled", err)
	}
}

// cancelOnLine cancels the run when the first log line arrives.
type cancelOnLine struct {
	cancel context.CancelFunc
	once   sync.Once
}

func (c *cancelOnLine) Log(string, string) error { c.once.Do(c.cancel); return nil }
func (c *cancelOnLine) Output(string, any) error { return nil }

// The alpine-check pipeline: read an os-release file, match its version,
// compare it with the expected one.
func TestAlpineCheck(t *testing.T) {
	for _, tc := range []struct {
		fixture, expected string
		wantCompare       action.Status
		wantGroup         string
	}{
		{"os-release-3.18", "3.18.0", action.StatusSuccess, "3.18.0"},
		{"os-release-3.19", "3.18.0", action.StatusFailure, "3.19.1"},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			path, err := filepath.Abs(filepath.Join("testdata", tc.fixture))
			if err != nil {
				t.Fatal(err)
			}
			a := sdktest.OverGRPC[action.Action](t, newConfigured(t, sdktest.NewLocalHost(t.TempDir()), nil), action.Service)
			ctx := context.Background()
			runCtx := map[string]any{"params": map[string]any{"os_release_file": path, "expected_version": tc.expected}, "actions": map[string]any{}}

			read, err := a.Run(ctx, &action.RunRequest{Type: "run", Name: "read", Params: map[string]any{"run": fmt.Sprintf("cat %q", path)}, Context: runCtx}, nil)
			if err != nil || read.Status != action.StatusSuccess {
				t.Fatalf("read: %v %+v", err, read)
			}
			runCtx["actions"].(map[string]any)["read"] = map[string]any{"status": "success", "outputs": read.Outputs}

			m, err := a.Run(ctx, &action.RunRequest{Type: "match", Name: "version_match", Params: map[string]any{"input": read.Outputs["stdout"], "pattern": `VERSION_ID=([0-9.]+)`}, Context: runCtx}, nil)
			if err != nil || m.Status != action.StatusSuccess {
				t.Fatalf("version_match: %v %+v", err, m)
			}
			groups, _ := m.Outputs["groups"].([]any)
			if m.Outputs["matched"] != true || len(groups) != 2 || groups[0] != "VERSION_ID="+tc.wantGroup || groups[1] != tc.wantGroup {
				t.Fatalf("version_match outputs = %v", m.Outputs)
			}
			runCtx["actions"].(map[string]any)["version_match"] = map[string]any{"status": "success", "outputs": m.Outputs}

			c, err := a.Run(ctx, &action.RunRequest{Type: "compare", Name: "version_match_success", Params: map[string]any{"expr": "actions.version_match.outputs.groups[1] == params.expected_version"}, Context: runCtx}, nil)
			if err != nil {
				t.Fatalf("compare: %v", err)
			}
			if c.Status != tc.wantCompare {
				t.Fatalf("compare status = %s (%s), want %s", c.Status, c.Message, tc.wantCompare)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	p := New()
	ctx := context.Background()
	res, err := p.Run(ctx, &action.RunRequest{Type: "match", Params: map[string]any{"input": "v=1.2", "pattern": `v=(?P<major>\d+)\.(\d+)(-rc)?`}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.Outputs["groups"]) != "[v=1.2 1 2 ]" || fmt.Sprint(res.Outputs["named"]) != "map[major:1]" {
		t.Errorf("outputs = %v, want groups with an empty unmatched group and the named group", res.Outputs)
	}
	res, err = p.Run(ctx, &action.RunRequest{Type: "match", Params: map[string]any{"input": "nothing here", "pattern": `VERSION_ID=(.*)`}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != action.StatusFailure || res.Outputs["matched"] != false || len(res.Outputs["groups"].([]any)) != 0 {
		t.Errorf("no match: %+v, want failure with matched false and no groups", res)
	}
	_, err = p.Run(ctx, &action.RunRequest{Type: "match", Params: map[string]any{"input": "x", "pattern": `(unclosed`}}, nil)
	assertField(t, err, "params.pattern")
}

func TestCompare(t *testing.T) {
	p := New()
	ctx := context.Background()
	runCtx := map[string]any{
		"params": map[string]any{"environment": "prod"},
		"jobs":   map[string]any{"terraform-prod-plan": map[string]any{"status": "success", "outputs": map[string]any{"changed": true}}},
	}
	for expr, want := range map[string]action.Status{
		`jobs["terraform-prod-plan"].outputs.changed == true`: action.StatusSuccess,
		`params.environment == "nonprod"`:                     action.StatusFailure,
		`trigger.type == "webhook"`:                           action.StatusFailure, // absent names are empty
		`let n = 2; n * 2 == 4`:                               action.StatusSuccess,
		`actions.missing.outputs.groups[1] == "x"`:            action.StatusFailure, // cannot be evaluated
	} {
		res, err := p.Run(ctx, &action.RunRequest{Type: "compare", Params: map[string]any{"expr": expr}, Context: runCtx}, nil)
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		if res.Status != want {
			t.Errorf("%s: status %s (%s), want %s", expr, res.Status, res.Message, want)
		}
	}

	_, err := p.Run(ctx, &action.RunRequest{Type: "compare", Params: map[string]any{"expr": `paramz.environment == "prod"`}, Context: runCtx}, nil)
	assertField(t, err, "params.expr")
	if err != nil && (!strings.Contains(err.Error(), `"paramz`) || !strings.Contains(err.Error(), "unknown name paramz")) {
		t.Errorf("error %q should quote the expression and name the unknown name", err)
	}
	_, err = p.Run(ctx, &action.RunRequest{Type: "compare", Params: map[string]any{"expr": `1 + 1`}}, nil)
	assertField(t, err, "params.expr")
}

func TestApprovalAndFail(t *testing.T) {
	p := New()
	res, err := p.Run(context.Background(), &action.RunRequest{Type: "approval", Params: map[string]any{"message": "Apply to prod?"}}, nil)
	if err != nil || res.Status != action.StatusWaiting || res.Message != "Apply to prod?" {
		t.Errorf("approval = %+v, %v; want waiting with the message", res, err)
	}
	res, err = p.Run(context.Background(), &action.RunRequest{Type: "fail", Params: map[string]any{"message": "Alpine version 3.19.1 is not 3.18.0"}}, nil)
	if err != nil || res.Status != action.StatusFailure || res.Message != "Alpine version 3.19.1 is not 3.18.0" {
		t.Errorf("fail = %+v, %v; want failure with the message", res, err)
	}
}

func TestNotify(t *testing.T) {
	var mu sync.Mutex
	var bodies []map[string]any
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		bodies = append(bodies, m)
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/broken") {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	p := newConfigured(t, nil, map[string]any{"notify_timeout": "5s"})
	ctx := context.Background()

	res, err := p.Run(ctx, &action.RunRequest{Type: "notify", Params: map[string]any{"url": srv.URL + "/hooks/T000/SECRET", "format": "slack", "message": "version mismatch"}}, nil)
	if err != nil || res.Status != action.StatusSuccess {
		t.Fatalf("slack notify: %+v, %v", res, err)
	}
	res, err = p.Run(ctx, &action.RunRequest{Type: "notify", Params: map[string]any{"url": srv.URL + "/plain", "message": "done"},
		Context: map[string]any{"run": map[string]any{"id": "run-1", "pipeline": "alpine"}}}, nil)
	if err != nil || res.Status != action.StatusSuccess {
		t.Fatalf("default notify: %+v, %v", res, err)
	}
	res, err = p.Run(ctx, &action.RunRequest{Type: "notify", Params: map[string]any{"url": srv.URL + "/SECRET/broken", "message": "x"}}, nil)
	if err != nil {
		t.Fatalf("notify to a failing hook: %v", err)
	}
	if res.Status != action.StatusFailure || !strings.Contains(res.Message, "500") || number(res.Outputs["status_code"]) != 500 {
		t.Errorf("notify to a failing hook = %+v, want failure with status code 500", res)
	}
	if strings.Contains(res.Message, "SECRET") {
		t.Errorf("message %q repeats the webhook's path", res.Message)
	}
	mu.Lock()
	if len(bodies) != 3 || fmt.Sprint(bodies[0]) != "map[text:version mismatch]" ||
		bodies[1]["message"] != "done" || fmt.Sprint(bodies[1]["run"]) != "map[id:run-1 pipeline:alpine]" {
		t.Errorf("payloads = %v", bodies)
	}
	mu.Unlock()

	res, err = p.Run(ctx, &action.RunRequest{Type: "notify", Params: map[string]any{"url": "", "message": "x"}}, nil)
	if err != nil || res.Status != action.StatusSkipped {
		t.Errorf("notify with no url = %+v, %v; want skipped", res, err)
	}

	// A closed port: failure, and the message does not repeat the URL.
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL + "/SECRET"
	closed.Close()
	res, err = p.Run(ctx, &action.RunRequest{Type: "notify", Params: map[string]any{"url": closedURL, "message": "x"}}, nil)
	if err != nil || res.Status != action.StatusFailure || strings.Contains(res.Message, "SECRET") {
		t.Errorf("notify to a closed port = %+v, %v; want failure not naming the path", res, err)
	}

	_, err = p.Run(ctx, &action.RunRequest{Type: "notify", Params: map[string]any{"url": "file:///etc/passwd", "message": "x"}}, nil)
	assertField(t, err, "params.url")
	_, err = p.Run(ctx, &action.RunRequest{Type: "notify", Params: map[string]any{"url": srv.URL, "format": "teams"}}, nil)
	assertField(t, err, "params.format")
}

func TestConfigure(t *testing.T) {
	p := New()
	resp, err := p.Configure(context.Background(), &sdk.ConfigureRequest{Config: map[string]any{"notify_timeout": "forever", "colour": "blue"}})
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]bool{}
	for _, d := range resp.Diagnostics {
		fields[d.Field] = true
	}
	if !fields["config.notify_timeout"] || !fields["config.colour"] {
		t.Fatalf("diagnostics = %+v, want one about config.notify_timeout and one about config.colour", resp.Diagnostics)
	}
}

func assertField(t *testing.T, err error, field string) {
	t.Helper()
	var typed *sdk.Error
	if !errors.Is(err, sdk.ErrInvalidArgument) || !errors.As(err, &typed) || typed.Field != field {
		t.Errorf("error = %v, want ErrInvalidArgument about %s", err, field)
	}
}

// The default shell runs the script without the wrapper's extra exec;
// what the script sees is the same as through the wrapper (a shell given
// as sh -ec takes it): $0, errexit, line numbers in messages, the outputs
// file, a first line that is a comment.
func TestRunScriptDefaultShellIsTheWrappersEqual(t *testing.T) {
	p := newConfigured(t, sdktest.NewLocalHost(t.TempDir()), nil)
	script := `# the first line is a comment
echo "zero=$0" >> "$PALVELLA_OUTPUT"
echo "line two"
not_a_command_here || true
false
echo "not reached"`
	var got []string
	for _, shell := range []any{nil, []any{"sh", "-ec"}} {
		params := map[string]any{"run": script}
		if shell != nil {
			params["shell"] = shell
		}
		rec := &sdktest.Recorder{}
		res, err := p.Run(context.Background(), &action.RunRequest{Type: "run", Name: "s", Params: params}, rec)
		if err != nil {
			t.Fatalf("shell %v: %v", shell, err)
		}
		// Each stream's lines in order; the two streams' lines may
		// interleave either way.
		var lines []string
		for _, stream := range []string{"stdout", "stderr"} {
			for _, l := range rec.Lines() {
				if l.Stream == stream {
					lines = append(lines, l.Stream+": "+l.Text)
				}
			}
		}
		got = append(got, fmt.Sprintf("%s %v zero=%v %q", res.Status, number(res.Outputs["exit_code"]), res.Outputs["zero"], lines))
	}
	if got[0] != got[1] {
		t.Fatalf("the default shell and the wrapper differ:\n default: %s\n wrapper: %s", got[0], got[1])
	}
	if !strings.Contains(got[0], "failure 1 zero=sh") || !strings.Contains(got[0], "stdout: line two") || !strings.Contains(got[0], "4: not_a_command_here") || strings.Contains(got[0], "not reached") {
		t.Fatalf("the script saw: %s", got[0])
	}
}
