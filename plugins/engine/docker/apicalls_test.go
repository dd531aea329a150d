package docker

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugins/engine/docker/dockertest"
)

// apiLog is a proxy in front of the test daemon that records the Engine
// API calls made through it ("POST /containers/{id}/start").
type apiLog struct {
	host string // tcp://... to give an engine

	mu    sync.Mutex
	calls []string
	hold  chan struct{} // when not nil, DELETE calls wait for it to close
}

var (
	apiVersion = regexp.MustCompile(`^/v[0-9.]+/`)
	apiIDs     = regexp.MustCompile(`[0-9a-f]{64}|palvella-(ws|job)-[0-9a-f]+`)
)

func newAPILog(t *testing.T) *apiLog {
	sock := strings.TrimPrefix(dockertest.Shared(t).Host, "unix://")
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(&url.URL{Scheme: "http", Host: "docker"}) },
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}},
	}
	l := &apiLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := apiIDs.ReplaceAllString(apiVersion.ReplaceAllString(r.URL.Path, "/"), "{id}")
		l.mu.Lock()
		l.calls = append(l.calls, r.Method+" "+path)
		hold := l.hold
		l.mu.Unlock()
		if hold != nil && r.Method == http.MethodDelete {
			<-hold
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	l.host = "tcp://" + srv.Listener.Addr().String()
	return l
}

// take returns the calls recorded since the last take.
func (l *apiLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	calls := l.calls
	l.calls = nil
	return calls
}

// holdDeletes makes the DELETE calls from now on wait until release is
// called.
func (l *apiLog) holdDeletes() (release func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	hold := make(chan struct{})
	l.hold = hold
	return sync.OnceFunc(func() {
		l.mu.Lock()
		l.hold = nil
		l.mu.Unlock()
		close(hold)
	})
}

// A trivial job (Setup, `true`, Teardown) makes few Engine API calls, and
// most of its time is the daemon's: the calls a job waits for, and those
// left to the background after Teardown, against a bare `docker run --rm`'s
// five (create, attach, wait, start, remove). Drain then leaves nothing
// on the daemon.
func TestTrivialJobAPICalls(t *testing.T) {
	l := newAPILog(t)
	c := testClient(t)
	for _, tc := range []struct {
		network         string
		job, background int // at most, waited for by the job and not
	}{
		// NetworkCreate, ContainerCreate, ContainerAttach, ContainerStart
		// (the command is the container's first process: boot.go);
		// ContainerRemove, NetworkRemove, VolumeRemove.
		{network: "job", job: 4, background: 3},
		{network: "none", job: 3, background: 2},
	} {
		t.Run("network="+tc.network, func(t *testing.T) {
			p := newEngine(t, map[string]any{"host": l.host, "network": tc.network})
			ctx := context.Background()
			// After the workspaces' Teardowns (cleanups run last first),
			// before the proxy goes.
			t.Cleanup(func() { p.Drain(ctx) })
			setup(t, p, nil) // the daemon's first use: ping and sweep
			l.take()
			ws, err := p.Setup(ctx, &engine.SetupRequest{Job: "trivial"})
			if err != nil {
				t.Fatalf("Setup: %v", err)
			}
			if res, err := p.Exec(ctx, &engine.ExecRequest{WorkspaceID: ws.ID, Command: []string{"true"}}, nil); err != nil || res.ExitCode != 0 {
				t.Fatalf("Exec: %v %+v", err, res)
			}
			job := l.take()
			// Teardown runs while the removals are held: those it left to
			// the background are still waiting when it returns (taking
			// the calls after it returned counted a quick removal as
			// waited for).
			release := l.holdDeletes()
			defer release()
			done := make(chan error, 1)
			go func() { done <- p.Teardown(ctx, ws.ID) }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Teardown: %v", err)
				}
			case <-time.After(30 * time.Second):
				release()
				t.Fatalf("Teardown did not return while the removals were held: it waits for them (calls: %v)", l.take())
			}
			var background []string
			for _, call := range l.take() {
				if strings.HasPrefix(call, http.MethodDelete+" ") {
					background = append(background, call)
				} else {
					job = append(job, call)
				}
			}
			release()
			dctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if err := p.Drain(dctx); err != nil {
				t.Fatalf("Drain: %v", err)
			}
			background = append(background, l.take()...)
			t.Logf("waited for by the job (%d): %s", len(job), strings.Join(job, ", "))
			t.Logf("in the background after Teardown (%d): %s", len(background), strings.Join(background, ", "))
			if len(job) > tc.job || len(background) > tc.background {
				t.Errorf("%d calls waited for and %d in the background, want at most %d and %d", len(job), len(background), tc.job, tc.background)
			}
			cs, ns, vs := labelled(t, c, labelWorkspace+"="+ws.ID)
			if len(cs)+len(ns)+len(vs) > 0 {
				t.Errorf("left after Drain: containers %v, networks %v, volumes %v", cs, ns, vs)
			}
		})
	}
}
