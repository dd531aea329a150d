package main

import (
	"net/http"
	"strings"
	"testing"
)

// A webhook secret is read as the pipeline's: a credential given to
// another namespace after the pipeline was applied no longer signs its
// webhooks, and the caller learns nothing of why.
func TestWebhookSecretFollowsItsCredentialsOwner(t *testing.T) {
	s, hooks := webhookServer(t, "")
	const secret = "a webhook secret nobody guesses"
	s.mustCLI("credential", "set", "ci-webhook-secret", "--value", secret)
	s.mustCLI("pipeline", "apply", "-f", exampleFile(t, "ci.yaml"))
	url := hooks + "/hooks/default/ci/on-push"
	body := []byte(`{"ref": "refs/heads/main"}`)
	if r := hook(t, url, body, "X-Hub-Signature-256", hmacOf(secret, body), "X-GitHub-Delivery", "d-1"); r.status != http.StatusAccepted {
		t.Fatalf("signed call with a global credential: %d %+v", r.status, r.body)
	}
	s.mustCLI("credential", "set", "ci-webhook-secret", "--namespace", "team-b", "--keep-value")
	r := hook(t, url, body, "X-Hub-Signature-256", hmacOf(secret, body), "X-GitHub-Delivery", "d-2")
	if r.status == http.StatusAccepted || r.body.Run != "" {
		t.Fatalf("signed with team-b's credential, a default pipeline's webhook started a run: %d %+v", r.status, r.body)
	}
	if strings.Contains(r.body.Error, "team-b") || strings.Contains(r.body.Error, "ci-webhook-secret") {
		t.Errorf("the unauthenticated caller is told about the set-up: %q", r.body.Error)
	}
	found := false
	for _, rec := range s.records("ci") {
		if strings.Contains(rec.Reason, "belongs to namespace team-b") {
			found = true
		}
	}
	if !found {
		t.Errorf("no trigger record says why the secret could not be used: %+v", s.records("ci"))
	}
}
