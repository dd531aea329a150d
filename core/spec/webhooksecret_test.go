package spec

import (
	"strings"
	"testing"
)

func TestLiteralWebhookSecretIsRefused(t *testing.T) {
	_, err := Load("pipeline.yaml", []byte(header+`spec:
  triggers:
    - {type: webhook, name: literal, secret: hunter2-is-no-secret}
    - {type: webhook, name: stored, secret: {from_credential: hook-secret}}
    - {type: webhook, name: none}
  jobs:
    - name: build
      actions: [{name: a, run: make}]
`), Options{})
	if err == nil {
		t.Fatal("accepted")
	}
	got := err.Error()
	for _, want := range []string{
		"pipeline.yaml:7: spec.triggers[0].secret: a webhook secret may not be written in the pipeline, where everyone who can read the pipeline sees it: store it as a credential (palvella credential set NAME) and write secret: {from_credential: NAME}",
		"pipeline.yaml:9: spec.triggers[2]: a webhook trigger needs a secret: {from_credential: NAME}",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "hunter2") || strings.Contains(got, "triggers[1]") {
		t.Errorf("the error repeats the secret or refuses the credential:\n%s", got)
	}
}
