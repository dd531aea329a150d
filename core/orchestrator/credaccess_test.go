package orchestrator

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/credential"
)

func TestCheckCredentialAccess(t *testing.T) {
	for _, c := range []struct {
		owner         CredentialOwner
		ns, pipeline  string
		wantErrSubstr string
	}{
		{CredentialOwner{}, "team-a", "deploy", ""},
		{CredentialOwner{Namespace: "team-a"}, "team-a", "deploy", ""},
		{CredentialOwner{Namespace: "team-b"}, "team-a", "deploy", `credential "db" belongs to namespace team-b`},
		{CredentialOwner{Namespace: "team-a", Pipelines: []string{"ci", "deploy"}}, "team-a", "deploy", ""},
		{CredentialOwner{Namespace: "team-a", Pipelines: []string{"ci"}}, "team-a", "deploy", "limited to the pipelines ci"},
		{CredentialOwner{Pipelines: []string{"team-a/deploy"}}, "team-a", "deploy", ""},
		{CredentialOwner{Pipelines: []string{"team-a/deploy"}}, "team-b", "deploy", "limited to the pipelines team-a/deploy"},
	} {
		err := CheckCredentialAccess("db", c.owner, c.ns, c.pipeline)
		switch {
		case c.wantErrSubstr == "" && err != nil:
			t.Errorf("%+v for %s/%s: %v", c.owner, c.ns, c.pipeline, err)
		case c.wantErrSubstr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErrSubstr) || !errors.Is(err, sdk.ErrPermissionDenied)):
			t.Errorf("%+v for %s/%s: %v, want %q", c.owner, c.ns, c.pipeline, err, c.wantErrSubstr)
		}
	}
}

func TestCredentialOwnerLabelsRoundTrip(t *testing.T) {
	o := CredentialOwner{Namespace: "team-a", Pipelines: []string{"ci", "deploy"}}
	got := CredentialOwnerOf(credential.Meta{Labels: o.Labels()})
	if got.Namespace != "team-a" || strings.Join(got.Pipelines, ",") != "ci,deploy" {
		t.Fatalf("round trip: %+v", got)
	}
	if g := CredentialOwnerOf(credential.Meta{}); g.Namespace != "" || g.Pipelines != nil {
		t.Fatalf("a credential without labels is global, got %+v", g)
	}
}

type oneCredential struct {
	credential.Credential
	sec credential.Secret
}

func (o oneCredential) Get(context.Context, string) (*credential.Secret, error) {
	s := o.sec
	s.Data = map[string][]byte{"value": []byte("the-value")}
	return &s, nil
}

func TestCredentialsForRefusesOtherNamespaces(t *testing.T) {
	c := oneCredential{sec: credential.Secret{Meta: credential.Meta{Name: "db", Labels: CredentialOwner{Namespace: "team-b"}.Labels()}}}
	run := &resource.Run{Meta: resource.Meta{Namespace: "team-a"}, Pipeline: "deploy"}
	if _, err := CredentialValue(context.Background(), credentialsFor(c, run), "db"); err == nil || !strings.Contains(err.Error(), "belongs to namespace team-b") {
		t.Fatalf("a team-a run reading a team-b credential: %v", err)
	}
	run.Namespace = "team-b"
	if v, err := CredentialValue(context.Background(), credentialsFor(c, run), "db"); err != nil || v != "the-value" {
		t.Fatalf("a team-b run: %q %v", v, err)
	}
}
