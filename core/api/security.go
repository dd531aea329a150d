package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/palvella/palvella/core/spec"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
)

// Security is what the token and credential routes serve. The server's
// backend implements it next to [Backend]; a backend without it answers
// those routes with 501.
//
// Errors wrap the sdk sentinels as Backend's do. Credential values go in
// and never come out.
type Security interface {
	// Bootstrap creates the first management token of a server that has
	// never issued one, and refuses (sdk.ErrFailedPrecondition) once it
	// has.
	Bootstrap(ctx context.Context) (*NewToken, error)
	// CreateToken issues a token for the caller, who may not give it
	// roles or namespaces beyond its own.
	CreateToken(ctx context.Context, caller *authentication.Identity, req TokenRequest) (*NewToken, error)
	// ListTokens lists the tokens the caller may see: every token for an
	// identity limited to no namespace, the tokens limited to some of its
	// namespaces for one that is.
	ListTokens(ctx context.Context, caller *authentication.Identity) ([]Token, error)
	// RevokeToken revokes a token; a caller limited to namespaces may
	// revoke only tokens limited to some of them.
	RevokeToken(ctx context.Context, caller *authentication.Identity, id string) (*Token, error)
	// RotateManagementToken issues a new management token, revokes the
	// old one and rewrites the server's cli.json when it has one.
	RotateManagementToken(ctx context.Context, caller *authentication.Identity) (*RotatedToken, error)

	// SetCredential creates or replaces a credential. A caller limited to
	// namespaces may set credentials of its namespaces only.
	SetCredential(ctx context.Context, caller *authentication.Identity, name string, req CredentialRequest) (*Credential, error)
	// ListCredentials lists the credentials the caller may see: all for
	// an identity limited to no namespace; those of its namespaces and the
	// global ones (which its pipelines may use) for one that is.
	ListCredentials(ctx context.Context, caller *authentication.Identity) ([]Credential, error)
	DeleteCredential(ctx context.Context, caller *authentication.Identity, name string) error
	// CredentialNamespace returns the namespace a credential belongs to:
	// "" for a global credential and for one that does not exist.
	CredentialNamespace(ctx context.Context, name string) (string, error)
	// CheckCredentialUse checks that the pipeline namespace/pipeline may
	// use the credentials it names, and that the caller may have it use
	// them (method use): one Problem per refused reference.
	CheckCredentialUse(ctx context.Context, caller *authentication.Identity, namespace, pipeline string, refs []spec.CredentialRef) ([]Problem, error)
}

func (s *server) security() (Security, error) {
	sec, ok := s.b.(Security)
	if !ok {
		return nil, sdk.Errorf(sdk.ErrUnimplemented, "", "this server does not manage tokens or credentials")
	}
	return sec, nil
}

func (s *server) bootstrap(c *call) error {
	sec, err := s.security()
	if err != nil {
		return err
	}
	if err := c.decode(&struct{}{}); err != nil {
		return err
	}
	t, err := sec.Bootstrap(c.r.Context())
	if err != nil {
		return fmt.Errorf("bootstrap the first token: %w", err)
	}
	c.w.Header().Set("Cache-Control", "no-store")
	writeJSON(c.w, http.StatusOK, t)
	return nil
}

func (s *server) whoami(c *call) error {
	writeJSON(c.w, http.StatusOK, c.id)
	return nil
}

func (s *server) createToken(c *call) error {
	sec, err := s.security()
	if err != nil {
		return err
	}
	var req TokenRequest
	if err := c.decode(&req, "name", "description", "roles", "namespaces", "expiresIn"); err != nil {
		return err
	}
	t, err := sec.CreateToken(c.r.Context(), c.id, req)
	if err != nil {
		return fmt.Errorf("create a token for %q: %w", req.Name, err)
	}
	c.w.Header().Set("Cache-Control", "no-store")
	writeJSON(c.w, http.StatusCreated, t)
	return nil
}

func (s *server) listTokens(c *call) error {
	sec, err := s.security()
	if err != nil {
		return err
	}
	items, err := sec.ListTokens(c.r.Context(), c.id)
	if err != nil {
		return fmt.Errorf("list tokens: %w", err)
	}
	if items == nil {
		items = []Token{}
	}
	writeJSON(c.w, http.StatusOK, Page[Token]{Items: items})
	return nil
}

func (s *server) revokeToken(c *call) error {
	sec, err := s.security()
	if err != nil {
		return err
	}
	id := c.r.PathValue("name")
	m, err := sec.RevokeToken(c.r.Context(), c.id, id)
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	writeJSON(c.w, http.StatusOK, m)
	return nil
}

func (s *server) setCredential(c *call) error {
	sec, err := s.security()
	if err != nil {
		return err
	}
	var req CredentialRequest
	if err := c.decode(&req, "type", "value", "data", "labels", "namespace", "pipelines", "keepValue"); err != nil {
		return err
	}
	name := c.r.PathValue("name")
	m, err := sec.SetCredential(c.r.Context(), c.id, name, req)
	if err != nil {
		return fmt.Errorf("set credential %s: %w", name, err)
	}
	writeJSON(c.w, http.StatusOK, m)
	return nil
}

func (s *server) listCredentials(c *call) error {
	sec, err := s.security()
	if err != nil {
		return err
	}
	items, err := sec.ListCredentials(c.r.Context(), c.id)
	if err != nil {
		return fmt.Errorf("list credentials: %w", err)
	}
	if items == nil {
		items = []Credential{}
	}
	writeJSON(c.w, http.StatusOK, Page[Credential]{Items: items})
	return nil
}

func (s *server) deleteCredential(c *call) error {
	sec, err := s.security()
	if err != nil {
		return err
	}
	name := c.r.PathValue("name")
	if err := sec.DeleteCredential(c.r.Context(), c.id, name); err != nil {
		return fmt.Errorf("delete credential %s: %w", name, err)
	}
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) rotateManagementToken(c *call) error {
	sec, err := s.security()
	if err != nil {
		return err
	}
	if err := c.decode(&struct{}{}); err != nil {
		return err
	}
	t, err := sec.RotateManagementToken(c.r.Context(), c.id)
	if err != nil {
		return fmt.Errorf("rotate the management token: %w", err)
	}
	c.w.Header().Set("Cache-Control", "no-store")
	writeJSON(c.w, http.StatusCreated, t)
	return nil
}

// checkCredentialUse refuses a pipeline that names credentials it, or the
// caller, may not use. A backend without Security has no credentials to
// guard.
func (s *server) checkCredentialUse(c *call, namespace string, p *spec.Pipeline) error {
	sec, ok := s.b.(Security)
	if !ok {
		return nil
	}
	refs := p.CredentialRefs()
	if len(refs) == 0 {
		return nil
	}
	problems, err := sec.CheckCredentialUse(c.r.Context(), c.id, namespace, p.Metadata.Name, refs)
	if err != nil {
		return fmt.Errorf("check the credentials of %s/%s: %w", namespace, p.Metadata.Name, err)
	}
	if len(problems) > 0 {
		for i := range problems {
			if problems[i].File == "" {
				problems[i].File = p.File()
			}
		}
		return &ValidationError{Problems: problems}
	}
	return nil
}

// checkFileCredentials checks the credentials a pipeline file names, for
// apply and validate. A file that does not parse is left to the backend's
// validation, which says what is wrong with it.
func (s *server) checkFileCredentials(c *call) error {
	p, err := spec.Parse(c.filename(), c.source)
	if err != nil {
		return nil
	}
	ns := firstNonEmpty(c.fileNamespace, p.Metadata.Namespace, spec.DefaultNamespace)
	return s.checkCredentialUse(c, ns, p)
}

// checkRunCredentials checks, before a run starts, that the caller may
// have the pipeline use the credentials its current version names.
func (s *server) checkRunCredentials(c *call, namespace, name string) error {
	if _, ok := s.b.(Security); !ok {
		return nil
	}
	pl, err := s.b.GetPipeline(c.r.Context(), namespace, name)
	if err != nil || len(pl.Spec) == 0 {
		return nil // StartRun says what is wrong
	}
	// The stored spec is the normalized pipeline document.
	p := &spec.Pipeline{}
	if err := json.Unmarshal(pl.Spec, p); err != nil {
		return fmt.Errorf("read the spec of %s/%s: %w", namespace, name, err)
	}
	p.Metadata.Name, p.Metadata.Namespace = name, namespace
	err = s.checkCredentialUse(c, namespace, p)
	var ve *ValidationError
	if errors.As(err, &ve) {
		msgs := make([]string, len(ve.Problems))
		for i, pr := range ve.Problems {
			msgs[i] = pr.String()
		}
		return sdk.Errorf(sdk.ErrPermissionDenied, "", "%s may not start %s/%s: %s", c.id.Name, namespace, name, strings.Join(msgs, "; "))
	}
	return err
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
