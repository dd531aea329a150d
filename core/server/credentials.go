package server

// Credentials: the API's credential routes, served through the credential
// plugin, with the owners (namespace, pipelines) kept in its labels.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/orchestrator"
	"github.com/palvella/palvella/core/spec"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"github.com/palvella/palvella/plugin-sdk/authorization"
	"github.com/palvella/palvella/plugin-sdk/credential"
)

const maxCredentialBytes = 32 << 10

var credNameRE = sized(`^[A-Za-z0-9][A-Za-z0-9._-]*$`, 128)
var credKeyRE = sized(`^[A-Za-z0-9][A-Za-z0-9._-]*$`, 64)
var nsRE = sized(`^[A-Za-z0-9][A-Za-z0-9._-]*$`, 253)

// sizedRE is a pattern with a maximum length in bytes checked apart. A
// bounded repetition such as {0,252} compiles to a state per repetition:
// the patterns above took 1.7 ms at every start of the palvella binary,
// builtin plugins included. Their classes are ASCII, so bytes are
// characters.
type sizedRE struct {
	re  *regexp.Regexp
	max int
}

func sized(pattern string, max int) sizedRE {
	return sizedRE{re: regexp.MustCompile(pattern), max: max}
}

// MatchString reports whether s is short enough and matches.
func (r sizedRE) MatchString(s string) bool { return len(s) <= r.max && r.re.MatchString(s) }

// apiCredential is a credential as the API shows it: its owner in fields,
// not in the labels that keep it.
func apiCredential(m credential.Meta) api.Credential {
	o := orchestrator.CredentialOwnerOf(m)
	out := api.Credential{CredentialMeta: m, Namespace: o.Namespace, Pipelines: o.Pipelines}
	if len(m.Labels) > 0 {
		out.CredentialMeta.Labels = map[string]string{}
		for k, v := range m.Labels {
			if !strings.HasPrefix(k, orchestrator.ReservedLabelPrefix) {
				out.CredentialMeta.Labels[k] = v
			}
		}
		if len(out.CredentialMeta.Labels) == 0 {
			out.CredentialMeta.Labels = nil
		}
	}
	return out
}

// credentialMeta returns a credential's metadata, nil when there is none
// of that name.
func credentialMeta(ctx context.Context, c credential.Credential, name string) (*credential.Meta, error) {
	items, err := c.List(ctx, name)
	if err != nil {
		return nil, err
	}
	for i := range items {
		if items[i].Name == name {
			return &items[i], nil
		}
	}
	return nil, nil
}

// CredentialNamespace returns the namespace a credential belongs to: ""
// for a global one or one that does not exist.
func (s *security) CredentialNamespace(ctx context.Context, name string) (string, error) {
	if !credNameRE.MatchString(name) {
		return "", nil // SetCredential says what is wrong with the name
	}
	c, err := s.credentials(ctx)
	if err != nil {
		return "", err
	}
	m, err := credentialMeta(ctx, c, name)
	if err != nil || m == nil {
		return "", err
	}
	return orchestrator.CredentialOwnerOf(*m).Namespace, nil
}

// mayChangeCredential checks that caller may change a credential owned by
// ns (as it is, or as it will be): write on its resource, and, for a
// caller limited to namespaces, ns among them (never a global one).
func (s *security) mayChangeCredential(ctx context.Context, caller *authentication.Identity, name, ns string) error {
	res := orchestrator.CredentialResource(name, ns)
	if !api.InScope(caller, ns) {
		what := res + " (a global credential)"
		if ns != "" {
			what = res
		}
		return api.OutOfScope(caller, what)
	}
	d, err := s.authz.Authorize(ctx, caller, res, authorization.MethodWrite)
	if err != nil {
		return fmt.Errorf("authorize write on %s: %w", res, err)
	}
	if d == nil || !d.Allowed {
		return sdk.Errorf(sdk.ErrPermissionDenied, "", "%s may not write %s", caller.Name, res)
	}
	return nil
}

// SetCredential creates or replaces a credential. Errors never hold a
// value. The credential belongs to req.Namespace (a caller limited to one
// namespace gets it by default; a global credential needs a caller limited
// to none); replacing a credential needs write on it as it is and as it
// will be.
func (s *security) SetCredential(ctx context.Context, caller *authentication.Identity, name string, req api.CredentialRequest) (*api.Credential, error) {
	if !credNameRE.MatchString(name) {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "name", "%q is not a credential name: 1 to 128 letters, digits, '.', '_' or '-'", name)
	}
	typ := req.Type
	if typ == "" {
		typ = "secret"
	}
	if !credKeyRE.MatchString(typ) {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "type", "%q is not a credential type", typ)
	}
	for k := range req.Labels {
		if strings.HasPrefix(k, orchestrator.ReservedLabelPrefix) {
			return nil, sdk.Errorf(sdk.ErrInvalidArgument, "labels", "%q: labels under %s are the server's (use namespace and pipelines)", k, orchestrator.ReservedLabelPrefix)
		}
	}
	owner := orchestrator.CredentialOwner{Namespace: req.Namespace}
	if owner.Namespace == "" && api.Limited(caller) {
		if len(caller.Namespaces) != 1 {
			return nil, sdk.Errorf(sdk.ErrInvalidArgument, "namespace", "%s is limited to the namespaces %s: say which one the credential belongs to", caller.Name, strings.Join(caller.Namespaces, ", "))
		}
		owner.Namespace = caller.Namespaces[0]
	}
	if owner.Namespace != "" && !nsRE.MatchString(owner.Namespace) {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "namespace", "%q is not a namespace name", owner.Namespace)
	}
	for i, p := range req.Pipelines {
		pns, pname, qualified := strings.Cut(p, "/")
		if !qualified {
			pname = pns
		}
		if (qualified && !nsRE.MatchString(pns)) || !nsRE.MatchString(pname) || (qualified && owner.Namespace != "" && pns != owner.Namespace) {
			return nil, sdk.Errorf(sdk.ErrInvalidArgument, fmt.Sprintf("pipelines[%d]", i), "%q is not a pipeline of the credential's namespace (NAME, or NAMESPACE/NAME for a global credential)", p)
		}
		if !slices.Contains(owner.Pipelines, p) {
			owner.Pipelines = append(owner.Pipelines, p)
		}
	}
	c, err := s.credentials(ctx)
	if err != nil {
		return nil, err
	}
	existing, err := credentialMeta(ctx, c, name)
	if err != nil {
		return nil, err
	}
	if existing != nil {
		// The route authorized the credential as it is; a caller limited to
		// namespaces may not take over a global one either.
		if err := s.mayChangeCredential(ctx, caller, name, orchestrator.CredentialOwnerOf(*existing).Namespace); err != nil {
			return nil, err
		}
	}
	if err := s.mayChangeCredential(ctx, caller, name, owner.Namespace); err != nil {
		return nil, err
	}
	data := map[string][]byte{}
	switch {
	case req.KeepValue && (req.Value != "" || len(req.Data) > 0):
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "keepValue", "keepValue keeps the value: give no value or data with it")
	case req.KeepValue:
		if existing == nil {
			return nil, sdk.Errorf(sdk.ErrNotFound, "name", "no credential is named %q: there is no value to keep", name)
		}
		sec, err := c.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		data = sec.Data
	case req.Value != "" && len(req.Data) > 0:
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "data", "give value or data, not both")
	case req.Value != "":
		data["value"] = []byte(req.Value)
	case len(req.Data) > 0:
		for k, v := range req.Data {
			if !credKeyRE.MatchString(k) {
				return nil, sdk.Errorf(sdk.ErrInvalidArgument, "data", "%q is not a key name", k)
			}
			if v == "" {
				return nil, sdk.Errorf(sdk.ErrInvalidArgument, "data."+k, "empty")
			}
			data[k] = []byte(v)
		}
	default:
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "value", "the credential has no value")
	}
	size := 0
	for k, v := range data {
		size += len(k) + len(v)
	}
	if size > maxCredentialBytes {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "value", "larger than %d KiB", maxCredentialBytes>>10)
	}
	labels := owner.Labels()
	maps.Copy(labels, req.Labels)
	m, err := c.Put(ctx, &credential.PutRequest{Name: name, Type: typ, Labels: labels, Data: data})
	if err != nil {
		return nil, err
	}
	out := apiCredential(*m)
	return &out, nil
}

// ListCredentials lists the metadata of the credentials the caller may
// see: all for a caller limited to no namespace; those of its namespaces
// and the global ones for one that is.
func (s *security) ListCredentials(ctx context.Context, caller *authentication.Identity) ([]api.Credential, error) {
	c, err := s.credentials(ctx)
	if err != nil {
		return nil, err
	}
	all, err := c.List(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make([]api.Credential, 0, len(all))
	for _, m := range all {
		ac := apiCredential(m)
		if ac.Namespace == "" || api.InScope(caller, ac.Namespace) {
			out = append(out, ac)
		}
	}
	return out, nil
}

// DeleteCredential deletes a credential; a caller limited to namespaces
// may delete those of its namespaces only.
func (s *security) DeleteCredential(ctx context.Context, caller *authentication.Identity, name string) error {
	c, err := s.credentials(ctx)
	if err != nil {
		return err
	}
	m, err := credentialMeta(ctx, c, name)
	if err != nil {
		return err
	}
	if m == nil {
		return sdk.Errorf(sdk.ErrNotFound, "name", "no credential is named %q", name)
	}
	if err := s.mayChangeCredential(ctx, caller, name, orchestrator.CredentialOwnerOf(*m).Namespace); err != nil {
		return err
	}
	return c.Delete(ctx, name)
}

// CheckCredentialUse checks each credential a pipeline names: the
// pipeline's namespace and name may use it (its owner), and the caller may
// have a pipeline use it (method use on its resource, within the caller's
// namespaces unless it is global). A credential that does not exist yet
// is not a problem here: the job that needs it fails saying so.
func (s *security) CheckCredentialUse(ctx context.Context, caller *authentication.Identity, namespace, pipeline string, refs []spec.CredentialRef) ([]api.Problem, error) {
	c, err := s.credentials(ctx)
	if err != nil {
		return nil, err
	}
	all, err := c.List(ctx, "")
	if err != nil {
		return nil, err
	}
	byName := map[string]credential.Meta{}
	for _, m := range all {
		byName[m.Name] = m
	}
	var problems []api.Problem
	for _, ref := range refs {
		m, ok := byName[ref.Name]
		if !ok {
			continue
		}
		owner := orchestrator.CredentialOwnerOf(m)
		if err := orchestrator.CheckCredentialAccess(ref.Name, owner, namespace, pipeline); err != nil {
			var se *sdk.Error
			msg := err.Error()
			if errors.As(err, &se) {
				msg = se.Message
			}
			problems = append(problems, api.Problem{Line: ref.Line, Field: ref.Path, Message: msg})
			continue
		}
		res := orchestrator.CredentialResource(ref.Name, owner.Namespace)
		if owner.Namespace != "" && !api.InScope(caller, owner.Namespace) {
			problems = append(problems, api.Problem{Line: ref.Line, Field: ref.Path, Message: fmt.Sprintf("%s may not use %s: it is limited to the namespaces %s", caller.Name, res, strings.Join(caller.Namespaces, ", "))})
			continue
		}
		d, err := s.authz.Authorize(ctx, caller, res, authorization.MethodUse)
		if err != nil {
			return nil, fmt.Errorf("authorize use of %s: %w", res, err)
		}
		if d == nil || !d.Allowed {
			problems = append(problems, api.Problem{Line: ref.Line, Field: ref.Path, Message: fmt.Sprintf("%s may not use %s (permission use)", caller.Name, res)})
		}
	}
	return problems, nil
}
