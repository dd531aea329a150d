package orchestrator

import (
	"context"
	"slices"
	"strings"

	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/credential"
)

// Who may use a credential
//
// A credential belongs to a namespace, or to none (a global credential,
// set by an identity limited to no namespace). It may further be limited
// to named pipelines. A pipeline may use a credential of its own
// namespace, or a global one, and only if the credential's pipelines
// (when it has any) name it. The owner is kept in two labels of the
// credential, so that any credential plugin keeps it without knowing what
// it means; a credential without them (one set before owners existed) is
// global.
//
// The API checks this when a pipeline is applied and when a run is
// started (together with the `use` permission of whoever does it); the
// worker checks it again when it reads the credential for a job
// (credentialsFor), since the credential may have changed meanwhile.

// Labels that hold a credential's owner. Labels under ReservedLabelPrefix
// are the server's: the API refuses them from users.
const (
	ReservedLabelPrefix      = "palvella.dev/"
	CredentialNamespaceLabel = ReservedLabelPrefix + "namespace"
	CredentialPipelinesLabel = ReservedLabelPrefix + "pipelines"
)

// CredentialOwner is who may use a credential.
type CredentialOwner struct {
	// Namespace owns the credential; empty for a global credential.
	Namespace string
	// Pipelines, when not empty, are the only pipelines that may use it:
	// names of pipelines of Namespace, or "<namespace>/<pipeline>" (the
	// way to name pipelines of a global credential in one namespace).
	Pipelines []string
}

// CredentialOwnerOf reads a credential's owner from its labels.
func CredentialOwnerOf(m credential.Meta) CredentialOwner {
	o := CredentialOwner{Namespace: m.Labels[CredentialNamespaceLabel]}
	for _, p := range strings.Split(m.Labels[CredentialPipelinesLabel], ",") {
		if p = strings.TrimSpace(p); p != "" {
			o.Pipelines = append(o.Pipelines, p)
		}
	}
	return o
}

// Labels returns the labels that record the owner (none for a global
// credential usable by every pipeline).
func (o CredentialOwner) Labels() map[string]string {
	out := map[string]string{}
	if o.Namespace != "" {
		out[CredentialNamespaceLabel] = o.Namespace
	}
	if len(o.Pipelines) > 0 {
		out[CredentialPipelinesLabel] = strings.Join(o.Pipelines, ",")
	}
	return out
}

// CredentialResource is the authorization resource of a credential:
// "credential:<namespace>/<name>", or "credential:<name>" for a global
// one.
func CredentialResource(name, namespace string) string {
	if namespace == "" {
		return "credential:" + name
	}
	return "credential:" + namespace + "/" + name
}

// CheckCredentialAccess says whether the pipeline namespace/pipeline may
// use the credential name owned by o. The error (sdk.ErrPermissionDenied)
// names the credential and its owner, never a value.
func CheckCredentialAccess(name string, o CredentialOwner, namespace, pipeline string) error {
	if o.Namespace != "" && o.Namespace != namespace {
		return sdk.Errorf(sdk.ErrPermissionDenied, "from_credential", "credential %q belongs to namespace %s", name, o.Namespace)
	}
	if len(o.Pipelines) > 0 && !slices.Contains(o.Pipelines, pipeline) && !slices.Contains(o.Pipelines, namespace+"/"+pipeline) {
		where := "namespace " + o.Namespace
		if o.Namespace == "" {
			where = "no namespace (global)"
		}
		return sdk.Errorf(sdk.ErrPermissionDenied, "from_credential", "credential %q (of %s) is limited to the pipelines %s, not %s/%s",
			name, where, strings.Join(o.Pipelines, ", "), namespace, pipeline)
	}
	return nil
}

// pipelineCredentials is the credential plugin as one run sees it: Get
// refuses the credentials the run's pipeline may not use.
type pipelineCredentials struct {
	credential.Credential
	namespace, pipeline string
}

// credentialsFor returns c limited to the credentials the pipeline of run
// may use.
func credentialsFor(c credential.Credential, run *resource.Run) credential.Credential {
	return pipelineCredentials{Credential: c, namespace: run.Namespace, pipeline: run.Pipeline}
}

// Get returns the credential if the pipeline may use it.
func (c pipelineCredentials) Get(ctx context.Context, name string) (*credential.Secret, error) {
	sec, err := c.Credential.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := CheckCredentialAccess(name, CredentialOwnerOf(sec.Meta), c.namespace, c.pipeline); err != nil {
		for k := range sec.Data {
			clear(sec.Data[k])
		}
		return nil, err
	}
	return sec, nil
}
