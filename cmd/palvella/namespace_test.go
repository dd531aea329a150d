package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/core/server"
)

// writePipeline writes a pipeline file into dir and returns its path.
func writePipelineFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestEveryRouteKeepsNamespaces calls every route of the API on a real
// server as tokens of every built-in role limited to the namespace team-a,
// aimed at team-b's pipeline, run, trigger record, credential and token
// and at the server's global things: each is refused or answers without
// anything of team-b, and nothing changes. The expectation comes from the
// route's scope, so a route without one fails.
func TestEveryRouteKeepsNamespaces(t *testing.T) {
	s := startServer(t, "")
	s.mustCLI("pipeline", "apply", "-n", "team-b", "-f", securityFile("gate.yaml"))
	s.mustCLI("pipeline", "run", "-n", "team-b", "gate")
	s.waitRunIn("team-b", "gate-1", func(r *resource.Run) bool { return r.Status == resource.StatusWaiting })
	s.mustCLI("credential", "set", "teamb-prod-db", "--namespace", "team-b", "--value", "team-b-secret-value")
	s.mustCLI("credential", "set", "shared", "--value", "shared-secret-value")
	teamBBot := s.newToken("teamb-bot", "--role", "viewer", "--namespace", "team-b")
	var records api.Page[resource.TriggerRecord]
	if r := s.call(http.MethodGet, "/api/v1/namespaces/team-b/triggers/records", s.adminToken(), ""); r.status != http.StatusOK || json.Unmarshal(r.body, &records) != nil || len(records.Items) == 0 {
		t.Fatalf("team-b's trigger records: %d %s", r.status, r.body)
	}
	var tokens []api.Token
	if err := json.Unmarshal([]byte(s.mustCLI("token", "list", "-o", "json")), &tokens); err != nil {
		t.Fatal(err)
	}
	managementID := ""
	for _, tk := range tokens {
		if tk.Management {
			managementID = tk.ID
		}
	}
	if managementID == "" {
		t.Fatalf("token list marks no management token: %+v", tokens)
	}
	roles := map[string]string{}
	for _, role := range []string{"admin", "operator", "developer", "viewer"} {
		roles[role] = s.newToken("team-a-"+role, "--role", role, "--namespace", "team-a").Token
	}
	teamBFile := strings.Replace(mustRead(t, securityFile("gate.yaml")), "name: gate", "name: gate\n  namespace: team-b", 1)

	// The request each route gets: team-b's things by default.
	fill := strings.NewReplacer("{ns}", "team-b", "{name}", "gate", "{run}", "gate-1", "{job}", "hold", "{action}", "ask")
	samples := map[string]struct{ path, body string }{
		"GET /api/v1/namespaces/{ns}/triggers/records/{name}": {path: "/api/v1/namespaces/team-b/triggers/records/" + records.Items[0].Name},
		"GET /api/v1/events":                {path: "/api/v1/events?after=0&once=true"},
		"POST /api/v1/tokens":               {body: `{"name":"escape","roles":["viewer"],"namespaces":["team-b"]}`},
		"DELETE /api/v1/tokens/{name}":      {path: "/api/v1/tokens/" + teamBBot.ID},
		"PUT /api/v1/credentials/{name}":    {path: "/api/v1/credentials/teamb-prod-db", body: `{"value":"replaced-by-team-a","namespace":"team-a"}`},
		"DELETE /api/v1/credentials/{name}": {path: "/api/v1/credentials/teamb-prod-db"},
	}
	// What must not show in an answer a limited token gets.
	teamB := []string{"team-b", "teamb-prod-db", teamBBot.ID, managementID}
	// Extra requests of filtered and owned routes: team-b by other means, and
	// the server's global things.
	extra := map[string][]struct{ path, body string }{
		"GET /api/v1/events":                {{path: "/api/v1/events?namespace=team-b&after=0&once=true"}},
		"DELETE /api/v1/tokens/{name}":      {{path: "/api/v1/tokens/" + managementID}},
		"PUT /api/v1/credentials/{name}":    {{path: "/api/v1/credentials/shared", body: `{"value":"replaced-by-team-a"}`}, {path: "/api/v1/credentials/shared", body: `{"value":"replaced-by-team-a","namespace":"team-a"}`}},
		"DELETE /api/v1/credentials/{name}": {{path: "/api/v1/credentials/shared"}},
	}
	admin := s.adminToken()
	before := s.namespaceState(admin)
	for _, rt := range api.Routes() {
		key := rt.Method + " " + rt.Pattern
		t.Run(key, func(t *testing.T) {
			if rt.Public {
				return
			}
			sample := samples[key]
			if sample.path == "" {
				sample.path = fill.Replace(rt.Pattern)
			}
			if sample.body == "" {
				switch rt.Body {
				case api.BodyPipeline:
					sample.body = teamBFile
				case api.BodyJSON:
					sample.body = "{}"
				}
			}
			for role, token := range roles {
				r := s.call(rt.Method, sample.path, token, sample.body)
				switch rt.Scope {
				case api.ScopeNamespaced, api.ScopeServer, api.ScopeOwned:
					if r.status != http.StatusForbidden {
						t.Errorf("team-a %s: status %d, want 403: %s", role, r.status, r.body)
					}
					for _, x := range extra[key] {
						if r := s.call(rt.Method, x.path, token, x.body); r.status != http.StatusForbidden {
							t.Errorf("team-a %s on %s: status %d, want 403: %s", role, x.path, r.status, r.body)
						}
					}
				case api.ScopeFiltered:
					switch {
					case r.status == http.StatusForbidden && rt.Method != http.MethodGet:
						// Refused by its role or by asking for team-b.
					case r.status != http.StatusOK:
						t.Errorf("team-a %s: status %d, want 200 with team-a's things only: %s", role, r.status, r.body)
					default:
						for _, x := range teamB {
							if strings.Contains(string(r.body), x) {
								t.Errorf("team-a %s: the answer holds %q: %s", role, x, r.body)
							}
						}
					}
					for _, x := range extra[key] {
						if r := s.call(rt.Method, x.path, token, x.body); r.status != http.StatusForbidden {
							t.Errorf("team-a %s on %s: status %d, want 403: %s", role, x.path, r.status, r.body)
						}
					}
				case api.ScopeCaller:
					if r.status != http.StatusOK {
						t.Errorf("team-a %s: status %d, want 200: %s", role, r.status, r.body)
					}
				default:
					t.Fatalf("the route has no namespace scope (Route.Scope); say what it does for a token limited to namespaces")
				}
			}
		})
	}
	if after := s.namespaceState(admin); after != before {
		t.Errorf("team-a's tokens changed the server:\nbefore %s\nafter  %s", before, after)
	}
}

// namespaceState is what team-a's tokens must not change: team-b's
// pipelines and runs, the credentials and the tokens, as an admin sees
// them.
func (s *testServer) namespaceState(admin string) string {
	s.t.Helper()
	var b strings.Builder
	for _, p := range []string{"/api/v1/namespaces/team-b/pipelines", "/api/v1/namespaces/team-b/runs", "/api/v1/credentials", "/api/v1/tokens"} {
		r := s.call(http.MethodGet, p, admin, "")
		if r.status != http.StatusOK {
			s.t.Fatalf("GET %s: %d %s", p, r.status, r.body)
		}
		b.Write(r.body)
	}
	return b.String()
}

// waitRunIn waits for a run of another namespace than default.
func (s *testServer) waitRunIn(ns, run string, ok func(*resource.Run) bool) *resource.Run {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := s.call(http.MethodGet, "/api/v1/namespaces/"+ns+"/runs/"+run, s.adminToken(), "")
		got := &resource.Run{}
		if r.status == http.StatusOK && json.Unmarshal(r.body, got) == nil && ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("run %s/%s: %d %s\n%s", ns, run, r.status, r.body, s.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCredentialOwnership: a pipeline uses the credentials of its
// namespace and the global ones, and only those whose pipelines name it;
// checked when it is applied (the error names the field) and again when
// its job reads the credential.
func TestCredentialOwnership(t *testing.T) {
	s := startServer(t, "")
	dir := t.TempDir()
	s.mustCLI("credential", "set", "teamb-prod-db", "--namespace", "team-b", "--value", "team-b-database-password")
	s.mustCLI("credential", "set", "deploy-only", "--namespace", "team-a", "--pipelines", "deploy", "--value", "deploy-only-value")
	s.mustCLI("credential", "set", "shared", "--value", "shared-value")
	pipeline := func(name, ns, cred string) string {
		return writePipelineFile(t, dir, ns+"-"+name, "apiVersion: palvella.dev/v1\nkind: Pipeline\nmetadata:\n  name: "+name+"\n  namespace: "+ns+
			"\nspec:\n  env:\n    DB_PASSWORD: {from_credential: "+cred+"}\n  jobs:\n    - name: use\n      actions:\n        - name: show\n          run: test -n \"$DB_PASSWORD\"\n")
	}
	dev := s.newToken("team-a-dev", "--role", "developer", "--namespace", "team-a")

	// Another namespace's credential: refused at apply, for anyone.
	for _, token := range []string{dev.Token, s.adminToken()} {
		out, errOut, code := s.cli("pipeline", "apply", "-f", pipeline("steal", "team-a", "teamb-prod-db"), "--token", token)
		errOut += out
		if code == 0 || !strings.Contains(errOut, `spec.env.DB_PASSWORD: credential "teamb-prod-db" belongs to namespace team-b`) {
			t.Errorf("a team-a pipeline naming team-b's credential: exit %d: %s", code, errOut)
		}
	}
	if out, _, _ := s.cli("pipeline", "list", "-n", "team-a"); strings.Contains(out, "steal") {
		t.Errorf("the refused pipeline was applied: %s", out)
	}
	// A credential limited to a pipeline: that one only.
	if out, errOut, code := s.cli("pipeline", "apply", "-f", pipeline("ci", "team-a", "deploy-only"), "--token", dev.Token); code == 0 || !strings.Contains(out+errOut, "limited to the pipelines deploy") {
		t.Errorf("pipeline ci naming a credential limited to deploy: exit %d: %s", code, errOut)
	}
	s.mustCLI("pipeline", "apply", "-f", pipeline("deploy", "team-a", "deploy-only"), "--token", dev.Token)
	// Global credentials (and those set before owners existed) serve every namespace.
	s.mustCLI("pipeline", "apply", "-f", pipeline("common", "team-a", "shared"), "--token", dev.Token)
	// A viewer may not have a pipeline use a credential (nor apply one).
	viewer := s.newToken("team-a-viewer", "--role", "viewer", "--namespace", "team-a")
	if out, errOut, code := s.cli("pipeline", "validate", "-f", pipeline("deploy", "team-a", "deploy-only"), "--token", viewer.Token); code == 0 || !strings.Contains(out+errOut, "may not use credential:team-a/deploy-only") {
		t.Errorf("validate as a viewer: exit %d: %s", code, errOut)
	}

	// Checked again when the job reads it: a credential given to team-b
	// after the run started (it did not exist then).
	late := writePipelineFile(t, dir, "late", "apiVersion: palvella.dev/v1\nkind: Pipeline\nmetadata:\n  name: late\n  namespace: team-a\nspec:\n  jobs:\n"+
		"    - name: wait\n      actions:\n        - name: sleep\n          run: sleep 3\n"+
		"    - name: use\n      requires: [wait]\n      actions:\n        - name: show\n          env:\n            DB_PASSWORD: {from_credential: later}\n          run: test -n \"$DB_PASSWORD\"\n")
	s.mustCLI("pipeline", "apply", "-f", late)
	s.mustCLI("pipeline", "run", "-n", "team-a", "late")
	s.mustCLI("credential", "set", "later", "--namespace", "team-b", "--value", "later-value-of-team-b")
	r := s.waitRunIn("team-a", "late-1", func(r *resource.Run) bool { return r.Status.Terminal() })
	if r.Status != resource.StatusFailure || !strings.Contains(r.Job("use").Reason, `credential "later" belongs to namespace team-b`) {
		t.Errorf("run of a pipeline whose credential went to team-b: %s, %q", r.Status, r.Job("use").Reason)
	}
	// And when a run starts.
	if out, errOut, code := s.cli("pipeline", "run", "-n", "team-a", "late"); code == 0 || !strings.Contains(out+errOut, `credential "later" belongs to namespace team-b`) {
		t.Errorf("starting a run whose credential went to team-b: exit %d: %s", code, errOut)
	}

	// Owners limit who changes a credential.
	op := s.newToken("team-a-op", "--role", "operator", "--namespace", "team-a")
	for _, args := range [][]string{
		{"credential", "set", "teamb-prod-db", "--value", "replaced-value"},
		{"credential", "set", "teamb-prod-db", "--namespace", "team-a", "--value", "replaced-value"},
		{"credential", "set", "shared", "--value", "replaced-value"},
		{"credential", "set", "new-global", "--namespace", "team-b", "--value", "replaced-value"},
		{"credential", "delete", "teamb-prod-db"},
		{"credential", "delete", "shared"},
	} {
		if _, errOut, code := s.cli(append(args, "--token", op.Token)...); code == 0 || !strings.Contains(errOut, "may not") {
			t.Errorf("team-a operator: %v: exit %d: %s", args, code, errOut)
		}
	}
	if out := s.mustCLI("credential", "set", "team-a-key", "--value", "team-a-value", "--token", op.Token); !strings.Contains(out, "namespace team-a") {
		t.Errorf("a team-a operator's credential: %s", out)
	}
	list := s.mustCLI("credential", "list", "--token", op.Token)
	if strings.Contains(list, "teamb-prod-db") || !strings.Contains(list, "team-a-key") || !strings.Contains(list, "shared") {
		t.Errorf("credential list of a team-a operator:\n%s", list)
	}
	// An admin moves a credential without knowing its value.
	s.mustCLI("credential", "set", "shared", "--namespace", "team-b", "--keep-value")
	var creds []api.Credential
	if err := json.Unmarshal([]byte(s.mustCLI("credential", "list", "-o", "json")), &creds); err != nil {
		t.Fatal(err)
	}
	for _, c := range creds {
		if c.Name == "shared" && c.Namespace != "team-b" {
			t.Errorf("shared after --keep-value --namespace team-b: %+v", c)
		}
	}
}

// TestManagementToken: the management token is listed and marked,
// rotated by an admin (cli.json rewritten, the old one refused), revoked
// like any token, and replaced when the server starts with a cli.json
// that holds no valid one.
func TestManagementToken(t *testing.T) {
	s := startServer(t, "")
	first := s.adminToken()
	var tokens []api.Token
	if err := json.Unmarshal([]byte(s.mustCLI("token", "list", "-o", "json")), &tokens); err != nil {
		t.Fatal(err)
	}
	if len(tokens) != 1 || !tokens[0].Management || tokens[0].Owner != server.ManagementOwner {
		t.Fatalf("token list: %+v, want the management token marked", tokens)
	}
	if list := s.mustCLI("token", "list"); !strings.Contains(list, "(management)") {
		t.Errorf("token list does not mark the management token:\n%s", list)
	}
	scoped := s.newToken("team-admin", "--role", "admin", "--namespace", "team-a")
	if _, errOut, code := s.cli("token", "rotate-management", "--token", scoped.Token); code == 0 || !strings.Contains(errOut, "limited to the namespaces") {
		t.Errorf("a namespace-limited admin rotating the management token: exit %d: %s", code, errOut)
	}
	if _, errOut, code := s.cli("token", "revoke", tokens[0].ID, "--token", scoped.Token); code == 0 || !strings.Contains(errOut, "limited to the namespaces") {
		t.Errorf("a namespace-limited admin revoking the management token: exit %d: %s", code, errOut)
	}
	if list := s.mustCLI("token", "list", "--token", scoped.Token); strings.Contains(list, server.ManagementOwner) {
		t.Errorf("a namespace-limited admin sees the management token:\n%s", list)
	}

	out := s.mustCLI("token", "rotate-management")
	second := s.adminToken()
	if second == first || !strings.Contains(out, "Rotated the management token") || strings.Contains(out, second) {
		t.Fatalf("rotate-management: %s", out)
	}
	if r := s.call(http.MethodGet, "/api/v1/whoami", first, ""); r.status != http.StatusUnauthorized {
		t.Errorf("the old management token after rotation: %d", r.status)
	}
	if fi, err := os.Stat(filepath.Join(s.home, server.CLIConfigFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cli.json after rotation: %v %v", fi, err)
	}
	who := s.mustCLI("token", "whoami")
	if !strings.Contains(who, server.ManagementOwner) {
		t.Errorf("whoami with the rotated token: %s", who)
	}

	// Revoked: the CLI is refused until the server starts again.
	if err := json.Unmarshal([]byte(s.mustCLI("token", "list", "-o", "json")), &tokens); err != nil {
		t.Fatal(err)
	}
	id := ""
	for _, tk := range tokens {
		if tk.Management && !tk.Revoked() {
			id = tk.ID
		}
	}
	s.mustCLI("token", "revoke", id)
	if _, errOut, code := s.cli("token", "whoami"); code == 0 || !strings.Contains(errOut, "revoked") {
		t.Errorf("the CLI after revoking the management token: exit %d: %s", code, errOut)
	}
	s.stop(syscall.SIGTERM)
	s.start()
	if third := s.adminToken(); third == second {
		t.Errorf("the server kept the revoked management token in cli.json")
	}
	s.mustCLI("token", "whoami")
	if log := mustRead(t, filepath.Join(s.home, "server.log")); !strings.Contains(log, "Wrote a new management token") || !strings.Contains(log, "revoked") {
		t.Errorf("the server did not say why it wrote a new management token:\n%s", s.logTail())
	}
	// A restart with a valid token keeps it.
	kept := s.adminToken()
	s.stop(syscall.SIGTERM)
	s.start()
	if s.adminToken() != kept {
		t.Errorf("a restart replaced a valid management token")
	}
}
