package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/core/server"
)

func securityFile(name string) string { return filepath.Join("testdata", "security", name) }

// adminToken is the management token a loopback server wrote for the CLI.
func (s *testServer) adminToken() string {
	s.t.Helper()
	var cc server.CLIConfig
	b, err := os.ReadFile(filepath.Join(s.home, server.CLIConfigFile))
	if err == nil {
		err = json.Unmarshal(b, &cc)
	}
	if err != nil || cc.Token == "" {
		s.t.Fatalf("no token in cli.json: %v", err)
	}
	return cc.Token
}

// newToken creates a token with the CLI and returns it.
func (s *testServer) newToken(args ...string) api.NewToken {
	s.t.Helper()
	var t api.NewToken
	out := s.mustCLI(append([]string{"token", "create", "-o", "json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &t); err != nil || !strings.HasPrefix(t.Token, "pvt_") {
		s.t.Fatalf("token create -o json: %v: %s", err, out)
	}
	return t
}

// apiClient gives up on a request that hangs, so a test fails instead.
var apiClient = &http.Client{Timeout: 30 * time.Second}

type apiResponse struct {
	status int
	body   []byte
	header http.Header
}

// call makes one API request with a bearer token ("" for none).
func (s *testServer) call(method, path, token, body string) apiResponse {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+s.addr+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return apiResponse{status: resp.StatusCode, header: resp.Header} // a stream: its status is the answer
	}
	b, _ := io.ReadAll(resp.Body)
	return apiResponse{status: resp.StatusCode, body: b, header: resp.Header}
}

// state is what a refused request must not change: every list the API
// has, as an admin sees it.
func (s *testServer) state(admin string) string {
	s.t.Helper()
	var b strings.Builder
	for _, p := range []string{"/api/v1/namespaces/default/pipelines", "/api/v1/namespaces/default/runs", "/api/v1/credentials", "/api/v1/tokens"} {
		r := s.call(http.MethodGet, p, admin, "")
		if r.status != http.StatusOK {
			s.t.Fatalf("GET %s: %d %s", p, r.status, r.body)
		}
		b.Write(r.body)
	}
	return b.String()
}

// stableState waits until the earlier allowed calls have settled (a run
// started or approved moves on by itself) and returns the state.
func (s *testServer) stableState(admin string) string {
	s.t.Helper()
	prev := s.state(admin)
	for range 200 {
		time.Sleep(100 * time.Millisecond)
		cur := s.state(admin)
		if cur == prev {
			return cur
		}
		prev = cur
	}
	s.t.Fatalf("the server's state never settled")
	return ""
}

// TestEveryRouteRefusesWhatItShould calls every route of the API on a real
// server with no token, a revoked, an expired, an other-namespace and a
// role-denied token (all refused, nothing changed), then an allowed one.
func TestEveryRouteRefusesWhatItShould(t *testing.T) {
	s := startServer(t, "")
	s.mustCLI("pipeline", "apply", "-f", pipelineFile("sleepy.yaml"))
	s.mustCLI("pipeline", "apply", "-f", securityFile("gate.yaml"))
	s.mustCLI("pipeline", "run", "sleepy", "-p", "seconds=300")
	for range 2 {
		s.mustCLI("pipeline", "run", "gate")
	}
	s.waitRun("gate-2", "waiting", func(r *resource.Run) bool { return r.Status == resource.StatusWaiting })
	s.waitRun("gate-1", "waiting", func(r *resource.Run) bool { return r.Status == resource.StatusWaiting })
	s.waitRun("sleepy-1", "running", func(r *resource.Run) bool { return r.Status == resource.StatusRunning })
	s.mustCLI("credential", "set", "build", "--value", "s3cr3t-value")

	revoked := s.newToken("gone", "--role", "admin")
	s.mustCLI("token", "revoke", revoked.ID)
	expired := s.newToken("brief", "--role", "admin", "--expires", "1s")
	elsewhere := s.newToken("elsewhere", "--role", "admin", "--namespace", "elsewhere")
	viewer := s.newToken("looker", "--role", "viewer")
	roleless := s.newToken("nobody", "--role", "no-such-role")
	victim := s.newToken("victim", "--role", "viewer")
	time.Sleep(1100 * time.Millisecond) // let the 1s token expire

	// Each route's sample request; the allowed call must succeed.
	samples := map[string]struct{ path, body string }{
		"POST /api/v1/pipelines/apply":    {body: mustRead(t, securityFile("gate.yaml"))},
		"POST /api/v1/pipelines/validate": {body: mustRead(t, securityFile("gate.yaml"))},
		"GET /api/v1/namespaces/{ns}/runs/{run}/jobs/{job}/actions/{action}/log": {
			path: "/api/v1/namespaces/default/runs/gate-1/jobs/hold/actions/ask/log"},
		"GET /api/v1/namespaces/{ns}/runs/{run}/jobs/{job}/actions": {path: "/api/v1/namespaces/default/runs/gate-1/jobs/hold/actions"},
		"POST /api/v1/namespaces/{ns}/runs/{run}/cancel":            {path: "/api/v1/namespaces/default/runs/sleepy-1/cancel", body: "{}"},
		"POST /api/v1/namespaces/{ns}/runs/{run}/approve":           {path: "/api/v1/namespaces/default/runs/gate-1/approve", body: "{}"},
		"POST /api/v1/namespaces/{ns}/runs/{run}/reject":            {path: "/api/v1/namespaces/default/runs/gate-2/reject", body: "{}"},
		"POST /api/v1/namespaces/{ns}/pipelines/{name}/runs":        {path: "/api/v1/namespaces/default/pipelines/gate/runs", body: "{}"},
		"DELETE /api/v1/namespaces/{ns}/pipelines/{name}":           {path: "/api/v1/namespaces/default/pipelines/sleepy"},
		"POST /api/v1/tokens":                                       {body: `{"name":"made","roles":["viewer"]}`},
		"POST /api/v1/whoami/access":                                {body: `{"checks":[{"resource":"run:default/gate/1","permission":"approve"}]}`},
		"DELETE /api/v1/tokens/{name}":                              {path: "/api/v1/tokens/" + victim.ID},
		"PUT /api/v1/credentials/{name}":                            {path: "/api/v1/credentials/fresh", body: `{"value":"another-secret"}`},
		"DELETE /api/v1/credentials/{name}":                         {path: "/api/v1/credentials/build"},
	}
	// Routes whose sample request must succeed: those above, and those the
	// default path fills in well.
	sampled := map[string]bool{}
	for k := range samples {
		sampled[k] = true
	}
	for _, k := range []string{"GET /api/v1/openapi.yaml", "GET /api/v1/plugins", "GET /api/v1/namespaces/{ns}/pipelines",
		"GET /api/v1/namespaces/{ns}/pipelines/{name}", "GET /api/v1/namespaces/{ns}/pipelines/{name}/versions",
		"GET /api/v1/namespaces/{ns}/runs", "GET /api/v1/namespaces/{ns}/runs/{run}", "GET /api/v1/namespaces/{ns}/runs/{run}/jobs",
		"GET /api/v1/whoami", "GET /api/v1/tokens", "GET /api/v1/credentials", "GET /api/v1/types"} {
		sampled[k] = true
	}
	// Deleting a pipeline and a credential goes last, so the others find them.
	routes := api.Routes()
	last := func(rt api.Route) bool { return rt.Method == http.MethodDelete }
	ordered := []api.Route{}
	for _, rt := range routes {
		if !last(rt) {
			ordered = append(ordered, rt)
		}
	}
	for _, rt := range routes {
		if last(rt) {
			ordered = append(ordered, rt)
		}
	}
	for _, rt := range ordered {
		key := rt.Method + " " + rt.Pattern
		sample := samples[key]
		path := sample.path
		if path == "" {
			path = strings.NewReplacer("{ns}", "default", "{name}", "gate", "{run}", "gate-1", "{job}", "hold", "{action}", "ask").Replace(rt.Pattern)
		}
		body := sample.body
		if body == "" && rt.Body != api.BodyNone {
			body = "{}"
		}
		t.Run(key, func(t *testing.T) {
			if rt.Public {
				if r := s.call(rt.Method, path, "", body); r.status == http.StatusUnauthorized || r.status == http.StatusForbidden {
					t.Fatalf("public route refused without a token: %d %s", r.status, r.body)
				}
				return
			}
			if rt.Resource == "" || rt.Permission == "" {
				t.Fatalf("route has no authorization rule")
			}
			// Rotating the management token replaces the one in cli.json.
			admin := s.adminToken()
			before := s.stableState(admin)
			denied := viewer.Token
			if rt.Permission == "read" {
				denied = roleless.Token
			}
			namespaced := strings.Contains(rt.Resource, "{ns}") || strings.Contains(rt.Resource, "{file}")
			cases := []struct {
				name, token string
				want        int
			}{
				{"no token", "", http.StatusUnauthorized},
				{"revoked", revoked.Token, http.StatusUnauthorized},
				{"expired", expired.Token, http.StatusUnauthorized},
				{"role denies " + rt.Permission, denied, http.StatusForbidden},
			}
			if namespaced {
				cases = append(cases, struct {
					name, token string
					want        int
				}{"other namespace", elsewhere.Token, http.StatusForbidden})
			}
			for _, c := range cases {
				if r := s.call(rt.Method, path, c.token, body); r.status != c.want {
					t.Errorf("%s: status %d, want %d: %s", c.name, r.status, c.want, r.body)
				}
			}
			if after := s.state(admin); after != before {
				t.Errorf("refused requests changed the server:\nbefore %s\nafter  %s", before, after)
			}
			r := s.call(rt.Method, path, admin, body)
			switch {
			case r.status == http.StatusUnauthorized || r.status == http.StatusForbidden:
				t.Errorf("allowed: status %d: %s", r.status, r.body)
			case (r.status < 200 || r.status > 299) && sampled[key]:
				t.Errorf("allowed: status %d: %s", r.status, r.body)
			case r.status < 200 || r.status > 299:
				// A route this test has no sample request for: it is
				// authorized, and its own tests say what it answers.
				t.Logf("allowed: status %d (no sample request for this route)", r.status)
			}
		})
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func randomSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "pw-" + hex.EncodeToString(b)
}

// TestCredentialNeverInClear runs a job that uses two credentials and
// prints them, whole and split across two writes, and fails with one in
// its message: no log, API answer, CLI output or file under the home holds
// a value.
func TestCredentialNeverInClear(t *testing.T) {
	s := startServer(t, "")
	password, apiKey := randomSecret(t), randomSecret(t)
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte(apiKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var seen []string // everything the CLI and the API answered
	seen = append(seen, s.mustCLI("credential", "set", "db-password", "--value", password))
	seen = append(seen, s.mustCLI("credential", "set", "api-key", "--from-file", file, "--type", "token"))
	list := s.mustCLI("credential", "list", "-o", "json")
	if !strings.Contains(list, `"db-password"`) || !strings.Contains(list, `"api-key"`) {
		t.Fatalf("credential list: %s", list)
	}
	seen = append(seen, list, s.mustCLI("credential", "list"))

	s.mustCLI("pipeline", "apply", "-f", securityFile("secret.yaml"))
	sum := sha256.Sum256([]byte(password))
	out, errOut, _ := s.cli("pipeline", "run", "secret", "-p", "want="+hex.EncodeToString(sum[:]), "--wait")
	seen = append(seen, out, errOut)
	r := s.waitRun("secret-1", "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
	if st := actionOf(t, r, "use", "check").Status; st != resource.StatusSuccess {
		t.Fatalf("the check action is %s (the values did not arrive):\n%s", st, s.mustCLI("run", "logs", "secret-1"))
	}
	if r.Status != resource.StatusFailure {
		t.Fatalf("run %s, want failure from the fail action", r.Status)
	}
	logs := s.mustCLI("run", "logs", "secret-1")
	for _, want := range []string{"password: ***", "key: ***", "split: *** end", "failing with ***"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log has no %q:\n%s", want, logs)
		}
	}
	seen = append(seen, logs, s.mustCLI("run", "get", "secret-1", "-o", "json"), s.mustCLI("run", "get", "secret-1"))
	dump := s.mustCLI("run", "dump", "secret-1")
	if !strings.Contains(dump, "password: ***") {
		t.Errorf("run dump has no masked log:\n%s", dump)
	}
	seen = append(seen, dump)
	admin := s.adminToken()
	for _, p := range []string{"/api/v1/credentials", "/api/v1/namespaces/default/runs/secret-1",
		"/api/v1/namespaces/default/runs/secret-1/jobs", "/api/v1/namespaces/default/runs/secret-1/jobs/use/actions",
		"/api/v1/namespaces/default/runs/secret-1/jobs/use/actions/check/log", "/api/v1/namespaces/default/runs/secret-1/jobs/use/actions/fail/log"} {
		seen = append(seen, string(s.call(http.MethodGet, p, admin, "").body))
	}
	// A run whose credential is missing fails saying which, not what.
	s.mustCLI("credential", "delete", "api-key")
	_, errOut, code := s.cli("pipeline", "run", "secret", "-p", "want=x", "--wait")
	seen = append(seen, errOut)
	r2 := s.waitRun("secret-2", "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
	if code == 0 || r2.Status != resource.StatusFailure || !strings.Contains(r2.Job("use").Reason, `credential "api-key" does not exist`) {
		t.Errorf("run without its credential: exit %d, %s, %q", code, r2.Status, r2.Job("use").Reason)
	}

	for i, text := range seen {
		for _, v := range []string{password, apiKey} {
			if strings.Contains(text, v) {
				t.Errorf("answer %d holds a credential value:\n%s", i, text)
			}
		}
	}
	s.stop(syscall.SIGTERM) // flush the databases
	err := filepath.WalkDir(s.home, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, v := range []string{password, apiKey} {
			if bytes.Contains(b, []byte(v)) {
				t.Errorf("%s holds a credential value in clear", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPerRunToken gives a job a token that reaches its own run only, and
// that is refused once the run has ended.
func TestPerRunToken(t *testing.T) {
	s := startServer(t, "")
	dir := jobDir(t)
	s.mustCLI("pipeline", "apply", "-f", securityFile("token.yaml"))
	s.mustCLI("pipeline", "run", "tok", "-p", "dir="+dir)
	tokenFile := filepath.Join(dir, "token")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(tokenFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job never wrote its token:\n%s", s.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	token := mustRead(t, tokenFile)
	if r := s.call(http.MethodGet, "/api/v1/namespaces/default/runs/tok-1", token, ""); r.status != http.StatusOK {
		t.Fatalf("the run token reading its run: %d %s", r.status, r.body)
	}
	if r := s.call(http.MethodGet, "/api/v1/whoami", token, ""); r.status != http.StatusOK || !strings.Contains(string(r.body), "run:default/tok/1") {
		t.Fatalf("whoami with the run token: %d %s", r.status, r.body)
	}
	for _, c := range []struct{ method, path, body string }{
		{http.MethodGet, "/api/v1/namespaces/default/pipelines", ""},
		{http.MethodGet, "/api/v1/namespaces/default/runs", ""},
		{http.MethodPost, "/api/v1/namespaces/default/pipelines/tok/runs", "{}"},
		{http.MethodPost, "/api/v1/tokens", `{"name":"escape","roles":["developer"]}`},
		{http.MethodGet, "/api/v1/credentials", ""},
	} {
		if r := s.call(c.method, c.path, token, c.body); r.status != http.StatusForbidden {
			t.Errorf("run token on %s %s: %d, want 403: %s", c.method, c.path, r.status, r.body)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "done"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := s.waitRun("tok-1", "ended", func(r *resource.Run) bool { return r.Status.Terminal() })
	if r.Status != resource.StatusSuccess {
		t.Fatalf("run %s", r.Status)
	}
	// Revoked as the job ends; the run's status may be recorded a moment
	// before.
	deadline = time.Now().Add(30 * time.Second)
	for {
		res := s.call(http.MethodGet, "/api/v1/namespaces/default/runs/tok-1", token, "")
		if res.status == http.StatusUnauthorized {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run token still works after the run: %d %s", res.status, res.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if list := s.mustCLI("token", "list"); !strings.Contains(list, "run:default/tok/1") || !strings.Contains(list, "revoked") {
		t.Errorf("token list does not show the run token revoked:\n%s", list)
	}
}

// TestTokensCannotExceedTheirMaker checks the limits on issuing tokens.
func TestTokensCannotExceedTheirMaker(t *testing.T) {
	s := startServer(t, "")
	scoped := s.newToken("team-admin", "--role", "admin", "--namespace", "team-a", "--expires", "1h")
	if _, errOut, code := s.cli("token", "create", "x", "--role", "viewer", "--namespace", "team-b", "--expires", "30m", "--token", scoped.Token); code == 0 || !strings.Contains(errOut, "limited to the namespaces team-a") {
		t.Errorf("namespace-limited admin issuing for another namespace: exit %d, %s", code, errOut)
	}
	if _, errOut, code := s.cli("token", "create", "x", "--role", "viewer", "--token", scoped.Token); code == 0 || !strings.Contains(errOut, "may not outlive") {
		t.Errorf("expiring admin issuing a token that never expires: exit %d, %s", code, errOut)
	}
	var made api.NewToken
	out := s.mustCLI("token", "create", "x", "--role", "viewer", "--expires", "30m", "-o", "json", "--token", scoped.Token)
	if err := json.Unmarshal([]byte(out), &made); err != nil || len(made.Namespaces) != 1 || made.Namespaces[0] != "team-a" {
		t.Errorf("a token made by a namespace-limited admin: %v %s, want it limited to team-a", err, out)
	}
	dev := s.newToken("dev", "--role", "developer")
	if _, errOut, code := s.cli("token", "create", "y", "--role", "admin", "--token", dev.Token); code == 0 || !strings.Contains(errOut, "may not write token:*") {
		t.Errorf("developer issuing an admin token: exit %d, %s", code, errOut)
	}
	who := s.mustCLI("token", "whoami", "--token", dev.Token)
	if !strings.Contains(who, "dev") || !strings.Contains(who, "developer") {
		t.Errorf("whoami: %s", who)
	}
	if _, errOut, code := s.cli("token", "bootstrap"); code == 0 || !strings.Contains(errOut, "loopback") {
		t.Errorf("bootstrap on a loopback server: exit %d, %s", code, errOut)
	}
}

// TestGuessingTokensIsSlowedDown: after a few unknown tokens, an address is
// refused for a while, even with a good token.
func TestGuessingTokensIsSlowedDown(t *testing.T) {
	s := startServer(t, "")
	for i := range server.FreeAuthFailures {
		if r := s.call(http.MethodGet, "/api/v1/whoami", "pvt_guess"+string(rune('a'+i)), ""); r.status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, r.status)
		}
	}
	if r := s.call(http.MethodGet, "/api/v1/whoami", "pvt_one-more", ""); r.status != http.StatusUnauthorized {
		t.Fatalf("the guess over the limit: %d", r.status)
	}
	r := s.call(http.MethodGet, "/api/v1/whoami", s.adminToken(), "")
	if r.status != http.StatusTooManyRequests || !strings.Contains(string(r.body), "too many failed authentications") {
		t.Fatalf("after the guesses: %d %s, want 429", r.status, r.body)
	}
}

// TestServerBeyondLoopback: it needs a credential key, writes no token
// file, and its first token comes from bootstrap, once.
func TestServerBeyondLoopback(t *testing.T) {
	home := t.TempDir()
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	listen := "0.0.0.0:" + port

	cmd := exec.Command(palvellaBin, "server", "--listen", listen)
	cmd.Env = append(os.Environ(), "PALVELLA_HOME="+home)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--secret-key-file") || !strings.Contains(string(out), "palvella credential keygen") {
		t.Fatalf("a server beyond loopback without a key: %v\n%s", err, out)
	}

	keyFile := filepath.Join(t.TempDir(), "secret.key")
	if _, errOut, code := palvella(t, home, "credential", "keygen", keyFile); code != 0 {
		t.Fatalf("keygen: %s", errOut)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	s := &testServer{t: t, home: home, addr: addr}
	s.start("--listen", listen, "--secret-key-file", keyFile)
	t.Cleanup(func() { s.stop(syscall.SIGTERM) })
	if _, err := os.Stat(filepath.Join(home, server.CLIConfigFile)); !os.IsNotExist(err) {
		t.Fatalf("a server beyond loopback wrote %s (%v)", server.CLIConfigFile, err)
	}
	if _, err := os.Stat(filepath.Join(home, server.SecretKeyFile)); !os.IsNotExist(err) {
		t.Fatalf("a server given a key generated one too (%v)", err)
	}
	url := "http://" + addr
	if r := s.call(http.MethodGet, "/api/v1/credentials", "", ""); r.status != http.StatusUnauthorized {
		t.Fatalf("no token: %d", r.status)
	}
	out2, errOut, code := s.cli("token", "bootstrap", "--server", url, "-o", "json")
	var first api.NewToken
	if code != 0 || json.Unmarshal([]byte(out2), &first) != nil || first.Token == "" {
		t.Fatalf("bootstrap: exit %d %s %s", code, out2, errOut)
	}
	if _, errOut, code := s.cli("token", "bootstrap", "--server", url); code == 0 || !strings.Contains(errOut, "works once") {
		t.Fatalf("second bootstrap: exit %d %s", code, errOut)
	}
	who := s.mustCLI("token", "whoami", "--server", url, "--token", first.Token)
	if !strings.Contains(who, "admin") {
		t.Fatalf("whoami: %s", who)
	}
	s.mustCLI("credential", "set", "x", "--value", "some-value", "--server", url, "--token", first.Token)
}

// TestLoopbackServerGeneratesItsKey: on first start a loopback server
// writes a credential key only its user can read, and says so.
func TestLoopbackServerGeneratesItsKey(t *testing.T) {
	s := startServer(t, "")
	fi, err := os.Stat(filepath.Join(s.home, server.SecretKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret.key: %v %v", fi, err)
	}
	if !strings.Contains(mustRead(t, filepath.Join(s.home, "server.log")), "Generated the key that encrypts credentials") {
		t.Errorf("the server did not say it generated the key:\n%s", s.logTail())
	}
	s.mustCLI("credential", "set", "kept", "--value", "across-restarts")
	s.stop(syscall.SIGTERM)
	s.start()
	if n := strings.Count(mustRead(t, filepath.Join(s.home, "server.log")), "Generated the key"); n != 1 {
		t.Errorf("the server said %d times that it generated the key, want once", n)
	}
	if list := s.mustCLI("credential", "list"); !strings.Contains(list, "kept") {
		t.Errorf("credential list after restart: %s", list)
	}
}
