package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestMetrics(t *testing.T) {
	s := startServer(t, "")
	s.mustCLI("pipeline", "apply", "-f", exampleFile(t, "ci.yaml"))
	s.mustCLI("pipeline", "run", "ci", "--wait")

	get := func(token string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, "http://"+s.addr+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Fatalf("/metrics without a token: %d, want 401", code)
	}
	code, body := get(s.adminToken())
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`palvella_runs_finished_total{status="success"} 1`,
		`palvella_plugin_call_seconds_count{method="/palvella.database.v1.DatabaseService/Update",outcome="ok",plugin="database-sqlite"}`,
		`palvella_plugin_call_seconds_count{method="/palvella.action.v1.ActionService/Run",outcome="ok",plugin="action-standard"}`,
		`palvella_job_duration_seconds_count{status="success"} 3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
