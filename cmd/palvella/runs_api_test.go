package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/resource"
)

// listRunsPage reads one page of GET .../runs.
func (s *testServer) listRunsPage(query string) (names []string, next string) {
	s.t.Helper()
	var page api.Page[resource.Run]
	s.apiGet("/api/v1/namespaces/default/runs?"+query, &page)
	for _, r := range page.Items {
		names = append(names, r.Name)
	}
	return names, page.NextPageToken
}

// GET .../runs lists runs newest first a page at a time, of one pipeline
// or of the namespace, whatever the order of their names (quick-10 sorts
// before quick-9), and a run started between two pages neither repeats
// one nor hides one; a page token that is not one is refused, naming it.
func TestListRunsNewestFirstWithPaging(t *testing.T) {
	s := startServer(t, "")
	for _, name := range []string{"quick", "other"} {
		s.mustCLI("pipeline", "apply", "-f", writePipeline(t, name, "  jobs:\n    - name: a\n      actions: [{name: s, run: \"true\"}]\n"))
	}
	var started []string // oldest first
	for i := range 11 {
		p := "quick"
		if i%4 == 3 {
			p = "other"
		}
		started = append(started, s.startedRun(p))
		time.Sleep(2 * time.Millisecond)
	}
	newest := slices.Clone(started)
	slices.Reverse(newest)
	var quick []string
	for _, n := range newest {
		if strings.HasPrefix(n, "quick-") {
			quick = append(quick, n)
		}
	}

	// One pipeline, 3 a page: quick-8 .. quick-1 (8 runs).
	var got []string
	token := ""
	for pages := 0; ; pages++ {
		names, next := s.listRunsPage("pipeline=quick&pageSize=3&pageToken=" + token)
		if len(names) > 3 || pages > 5 {
			t.Fatalf("page %d: %v (token %q)", pages, names, next)
		}
		got = append(got, names...)
		if pages == 0 {
			// A run started now comes before the first page, not in the next.
			s.startedRun("quick")
		}
		if next == "" {
			break
		}
		token = next
	}
	if strings.Join(got, ",") != strings.Join(quick, ",") {
		t.Errorf("runs of quick: %v, want %v", got, quick)
	}

	// The namespace, 4 a page.
	got, token = nil, ""
	for pages := 0; ; pages++ {
		names, next := s.listRunsPage("pageSize=4&pageToken=" + token)
		if len(names) > 4 || pages > 5 {
			t.Fatalf("page %d: %v", pages, names)
		}
		got = append(got, names...)
		if next == "" {
			break
		}
		token = next
	}
	want := append([]string{fmt.Sprintf("quick-%d", len(quick)+1)}, newest...)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("runs of the namespace: %v, want %v", got, want)
	}

	admin := s.adminToken()
	for _, q := range []string{"pipeline=quick&pageToken=t:1:x:1", "pageToken=n:3", "pageToken=bogus", "pipeline=quick&pageToken=n:-2"} {
		r := s.call(http.MethodGet, "/api/v1/namespaces/default/runs?"+q, admin, "")
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "pageToken") {
			t.Errorf("GET runs?%s = %d %s, want 400 naming pageToken", q, r.status, r.body)
		}
	}
}

// streamEvents reads a server-sent event stream into events until it ends.
type streamEvents struct {
	mu    sync.Mutex
	lines []api.LogLine
	end   *api.StreamEnd
	done  chan struct{}
}

func (s *testServer) followStream(path, token string) *streamEvents {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("GET %s: %s", path, resp.Status)
	}
	ev := &streamEvents{done: make(chan struct{})}
	go func() {
		defer close(ev.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		name := ""
		for sc.Scan() {
			l := sc.Text()
			switch {
			case strings.HasPrefix(l, "event: "):
				name = strings.TrimPrefix(l, "event: ")
			case strings.HasPrefix(l, "data: "):
				data := []byte(strings.TrimPrefix(l, "data: "))
				ev.mu.Lock()
				switch name {
				case "line":
					var ll api.LogLine
					_ = json.Unmarshal(data, &ll)
					ev.lines = append(ev.lines, ll)
				case "end":
					ev.end = &api.StreamEnd{}
					_ = json.Unmarshal(data, ev.end)
				}
				ev.mu.Unlock()
			}
		}
	}()
	s.t.Cleanup(func() { resp.Body.Close() })
	return ev
}

// A run's log stream opened when the run starts follows the actions the
// run gains later (the terraform jobs are expanded by their job plugin
// when they run) and does not end while the run waits for approval: after
// the approval it carries the apply's lines, each action's lines once and
// in order (as stored), and ends with the run's status.
func TestRunLogStreamFollowsNewActionsAndApprovals(t *testing.T) {
	s := startServer(t, "")
	s.mustCLI("pipeline", "apply", "-f", exampleFile(t, "terraform/pipeline.yaml"))
	var run resource.Run
	if err := json.Unmarshal([]byte(s.mustCLI("pipeline", "run", "deploy-terraform", "-p", "environment=prod",
		"-p", "terraform_binary="+exampleFile(t, "terraform/terraform-stub.sh"), "-o", "json")), &run); err != nil {
		t.Fatal(err)
	}
	admin := s.adminToken()
	whole := s.followStream("/api/v1/namespaces/default/runs/"+run.Name+"/logs/stream", admin)
	job := s.followStream("/api/v1/namespaces/default/runs/"+run.Name+"/logs/stream?job=terraform-prod-apply", admin)
	s.waitRun(run.Name, "waiting", func(r *resource.Run) bool { return r.Status == resource.StatusWaiting || r.Status.Terminal() })
	time.Sleep(1500 * time.Millisecond)
	for what, ev := range map[string]*streamEvents{"the run's stream": whole, "the job's stream": job} {
		select {
		case <-ev.done:
			t.Fatalf("%s ended while the run waits for approval (end %+v)", what, ev.end)
		default:
		}
	}
	s.mustCLI("run", "approve", run.Name, "--job", "terraform-prod-approve")
	final := s.waitRun(run.Name, "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
	for what, ev := range map[string]*streamEvents{"the run's stream": whole, "the job's stream": job} {
		select {
		case <-ev.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not end after the run ended", what)
		}
		if ev.end == nil || ev.end.Status != resource.StatusSuccess || final.Status != resource.StatusSuccess {
			t.Errorf("%s ended with %+v; the run is %s", what, ev.end, final.Status)
		}
		text := ""
		for _, l := range ev.lines {
			text += l.Job + "/" + l.Action + " " + l.Line + "\n"
		}
		if !strings.Contains(text, "Applying plan for prod: 2 to add") {
			t.Errorf("%s has no line of the prod apply:\n%s", what, text)
		}
	}
	// Each action's lines in the run's stream are its stored log, once.
	byAction := map[string][]string{}
	for _, l := range whole.lines {
		byAction[l.Job+"/"+l.Action] = append(byAction[l.Job+"/"+l.Action], l.Line)
	}
	for _, j := range final.Jobs {
		for _, a := range j.Actions {
			r := s.call(http.MethodGet, "/api/v1/namespaces/default/runs/"+run.Name+"/jobs/"+j.Name+"/actions/"+a.Name+"/log", admin, "")
			stored := strings.Split(strings.TrimSuffix(string(r.body), "\n"), "\n")
			if string(r.body) == "" {
				stored = nil
			}
			if got := byAction[j.Name+"/"+a.Name]; strings.Join(got, "\n") != strings.Join(stored, "\n") {
				t.Errorf("%s/%s: the stream has %d lines, the stored log %d:\n%s\n--- stored:\n%s", j.Name, a.Name, len(got), len(stored), strings.Join(got, "\n"), r.body)
			}
		}
	}
}
