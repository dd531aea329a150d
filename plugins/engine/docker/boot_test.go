package docker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugins/engine/docker/dockertest"
)

// The job's first command runs as the job's container's first process
// (boot.go), the next ones as execs in it: what a command sees is the same
// either way. Its output reaches the caller byte for byte without the end
// marks, even output that looks like one; its status is its own; its
// environment does not leak into the next command, while its changes to
// the container's files stay, as they did between two execs.
func TestFirstCommandIsLikeAnExec(t *testing.T) {
	p := newEngine(t, nil)
	ws := setup(t, p, nil)
	first := &engine.ExecRequest{WorkspaceID: ws.ID, Env: map[string]string{"ONLY_FIRST": "it's 'quoted' $HOME"},
		Script: `printf 'out: %s\n' "$ONLY_FIRST"
printf 'looks like a mark \036PALVELLA-END- 0\n\036PALV'
printf 'to stderr, no newline \036' >&2
echo changed > /etc/palvella-first
pwd >&2
exit 3`}
	res, out, errOut := execText(t, p, first)
	wantOut := "out: it's 'quoted' $HOME\nlooks like a mark \x1ePALVELLA-END- 0\n\x1ePALV"
	wantErr := "to stderr, no newline \x1e" + ws.Workdir + "\n"
	if res.ExitCode != 3 || out != wantOut || errOut != wantErr {
		t.Fatalf("first command: exit %d, stdout %q, stderr %q; want 3, %q, %q", res.ExitCode, out, errOut, wantOut, wantErr)
	}
	res, out, errOut = execText(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Workdir: "sub",
		Script: `echo "${ONLY_FIRST-unset}"; cat /etc/palvella-first; pwd`})
	if want := "unset\nchanged\n" + ws.Workdir + "/sub\n"; res.ExitCode != 0 || out != want {
		t.Fatalf("second command: exit %d, stdout %q (stderr %q), want %q", res.ExitCode, out, errOut, want)
	}
}

// A variable whose name sh cannot export (an exec takes any), or one a
// shell may hold read-only (UID, with bash as sh), does not stop the
// command: that command runs as an exec, as before. (The test image's sh
// is busybox's, which holds no UID: the failure this avoids needs an
// image whose sh is bash; here the test shows such a command still runs.)
func TestFirstCommandWithAnyVariableName(t *testing.T) {
	p := newEngine(t, nil)
	for _, name := range []string{"A-B", "UID"} {
		ws := setup(t, p, nil)
		res, out, errOut := execText(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Env: map[string]string{name: "x", "OK": "yes"}, Script: `echo "ran $OK"`})
		if res.ExitCode != 0 || out != "ran yes\n" {
			t.Fatalf("%s: exit %d, output %q %q", name, res.ExitCode, out, errOut)
		}
	}
}

// A first command with a large environment (400 KB: more than the pipes
// between the engine and the container's sh hold) runs, as an exec would.
func TestFirstCommandWithALargeEnvironment(t *testing.T) {
	p := newEngine(t, nil)
	ws := setup(t, p, nil)
	env := map[string]string{}
	for i := range 10 {
		env[fmt.Sprintf("BIG_%d", i)] = strings.Repeat("x", 40<<10)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	res, err := p.Exec(ctx, &engine.ExecRequest{WorkspaceID: ws.ID, Env: env, Script: `printf '%s' "$BIG_9" | wc -c`},
		func(s string, b []byte) error { out.Write(b); return nil })
	if err != nil || res.ExitCode != 0 || strings.TrimSpace(out.String()) != "40960" {
		t.Fatalf("Exec: %v %+v %q", err, res, out.String())
	}
}

// The daemon keeps no log of what the job's container printed: the
// output reaches the engine through the attach, and a secret in it is
// not left in a log file on the daemon's host.
func TestJobContainerKeepsNoLog(t *testing.T) {
	p := newEngine(t, nil)
	ws := setup(t, p, nil)
	res, out, _ := execText(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Script: `echo token=s3cret-first`})
	if res.ExitCode != 0 || out != "token=s3cret-first\n" {
		t.Fatalf("exit %d, output %q", res.ExitCode, out)
	}
	c := testClient(t)
	cs, _, _ := labelled(t, c, labelWorkspace+"="+ws.ID, labelRole+"=job")
	if len(cs) != 1 {
		t.Fatalf("job containers: %v", cs)
	}
	logs, err := c.ContainerLogs(context.Background(), strings.Fields(cs[0])[0], client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err == nil {
		b, _ := io.ReadAll(logs)
		logs.Close()
		if bytes.Contains(b, []byte("s3cret")) {
			t.Fatalf("the daemon's log of the job's container holds the output: %q", b)
		}
	}
}

// Files given to the first command are in the workspace before it runs
// (copied into the container before its start), and its files out are
// read back.
func TestFirstCommandFilesInAndOut(t *testing.T) {
	p := newEngine(t, nil)
	ws := setup(t, p, nil)
	res, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID,
		FilesIn:  []engine.File{{Path: "in/a.txt", Content: []byte("hello")}},
		Script:   `tr a-z A-Z < in/a.txt > out.txt`,
		FilesOut: []string{"out.txt"}}, nil)
	if err != nil || res.ExitCode != 0 || len(res.FilesOut) != 1 || string(res.FilesOut[0].Content) != "HELLO" {
		t.Fatalf("Exec: %v %+v", err, res)
	}
}

// When the job's container is killed under its first command, the
// command ends with the container's status rather than waiting, and the
// next command starts the container again.
func TestJobContainerKilledUnderItsFirstCommand(t *testing.T) {
	p := newEngine(t, nil)
	ws := setup(t, p, nil)
	c := testClient(t)
	ready := make(chan struct{})
	done := make(chan *engine.ExecResult, 1)
	go func() {
		var once bool
		res, err := p.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: ws.ID, Script: "echo ready; sleep 60"},
			func(s string, b []byte) error {
				if !once && bytes.Contains(b, []byte("ready")) {
					once = true
					close(ready)
				}
				return nil
			})
		if err != nil {
			t.Errorf("Exec: %v", err)
		}
		done <- res
	}()
	select {
	case <-ready:
	case <-time.After(time.Minute):
		t.Fatal("the first command did not start")
	}
	cs, _, _ := labelled(t, c, labelWorkspace+"="+ws.ID, labelRole+"=job")
	if len(cs) != 1 {
		t.Fatalf("job containers: %v", cs)
	}
	if _, err := c.ContainerKill(context.Background(), strings.Fields(cs[0])[0], client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-done:
		if res == nil || res.ExitCode == 0 {
			t.Fatalf("command under a killed container: %+v, want a failure", res)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the command did not end when its container was killed")
	}
	res, out, errOut := execText(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "echo again"})
	if res.ExitCode != 0 || out != "again\n" {
		t.Fatalf("next command: exit %d, %q %q", res.ExitCode, out, errOut)
	}
}

// endMarks gives back exactly the output before the marks, however the
// stream is cut into frames, and the status in them.
func FuzzEndMarks(f *testing.F) {
	f.Add([]byte("hello\n"), []byte("err"), uint8(3), uint8(0), uint8(7))
	f.Add([]byte("\x1ePALVELLA-END-"), []byte("\x1e"), uint8(1), uint8(1), uint8(255))
	f.Add([]byte(""), []byte(""), uint8(0), uint8(2), uint8(0))
	f.Fuzz(func(t *testing.T, stdout, stderr []byte, cutOut, cutErr, code uint8) {
		const nonce = "0123456789abcdef"
		prefix := endMark + nonce + " "
		if bytes.Contains(stdout, []byte(prefix)) || bytes.Contains(stderr, []byte(prefix)) {
			t.Skip("the output holds the nonce: a random one of 16 hex digits never is")
		}
		var got [2]bytes.Buffer
		doneCalls := 0
		m := &endMarks{prefix: []byte(prefix), done: func() { doneCalls++ },
			out: func(s string, b []byte) error { got[streamIndex(s)].Write(b); return nil }}
		mark := []byte(prefix + strings.TrimSpace(string(rune('0'+code%10))) + "\n")
		streams := [2][]byte{append(bytes.Clone(stdout), mark...), append(bytes.Clone(stderr), mark...)}
		cuts := [2]int{int(cutOut) + 1, int(cutErr) + 1}
		// Interleave the two streams' frames.
		for pos := [2]int{}; pos[0] < len(streams[0]) || pos[1] < len(streams[1]); {
			for i, name := range []string{engine.Stdout, engine.Stderr} {
				if pos[i] >= len(streams[i]) {
					continue
				}
				end := min(pos[i]+cuts[i], len(streams[i]))
				if err := m.write(name, streams[i][pos[i]:end]); err != nil {
					t.Fatal(err)
				}
				pos[i] = end
			}
		}
		if got[0].String() != string(stdout) || got[1].String() != string(stderr) {
			t.Fatalf("got %q %q, want %q %q", got[0].String(), got[1].String(), stdout, stderr)
		}
		st, ok := m.status()
		if !ok || st != int(code%10) || doneCalls != 1 {
			t.Fatalf("status %d %v, done %d times; want %d, true, once", st, ok, doneCalls, code%10)
		}
	})
}

// A caller that gives up while the job's container starts for its first
// command (the start goes through at the daemon after the call ended, as
// a slow daemon's may) never has the command run: its script waits on
// the container's stdin, so the container is removed. The job's next
// command still runs, in a container of its own.
func TestFirstCommandGivenUpDuringItsStartNeverRuns(t *testing.T) {
	sock := strings.TrimPrefix(dockertest.Shared(t).Host, "unix://")
	toDaemon := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(&url.URL{Scheme: "http", Host: "docker"}) },
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}},
	}
	var delayed atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/start") && delayed.CompareAndSwap(false, true) {
			// The daemon gets the start a second after the caller gave up.
			time.Sleep(1500 * time.Millisecond)
			req, _ := http.NewRequestWithContext(context.Background(), r.Method, "http://docker"+r.URL.RequestURI(), nil)
			if resp, err := toDaemon.Do(req); err == nil {
				resp.Body.Close()
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p := newEngine(t, map[string]any{"host": "tcp://" + srv.Listener.Addr().String()})
	dir := t.TempDir()
	ws := setup(t, p, map[string]any{"volumes": []any{map[string]any{"name": dir, "path": "/out"}}})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := p.Exec(ctx, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "touch /out/ran"}, nil); err == nil {
		t.Fatal("Exec whose caller gave up during the start: no error")
	}
	time.Sleep(3 * time.Second) // past the delayed start
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Fatal("the command ran after its caller gave up")
	}
	res, out, errOut := execText(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "echo again; touch /out/next"})
	if res.ExitCode != 0 || out != "again\n" {
		t.Fatalf("next command: exit %d, %q %q", res.ExitCode, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Fatal("the given-up command ran with the next one")
	}
}
