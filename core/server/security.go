package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/orchestrator"
	"github.com/palvella/palvella/core/pluginhost"
	"github.com/palvella/palvella/core/spec"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"github.com/palvella/palvella/plugin-sdk/authorization"
	"github.com/palvella/palvella/plugin-sdk/credential"
)

// SecretKeyEnv holds the credential key (base64 of 32 bytes) when it is
// not in a file.
const SecretKeyEnv = "PALVELLA_SECRET_KEY"

// SecretKeyFileEnv names the credential key's file when --secret-key-file
// does not.
const SecretKeyFileEnv = "PALVELLA_SECRET_KEY_FILE"

// SecretKeyFile is the key file a loopback server generates under its
// home when it is given no key.
const SecretKeyFile = "secret.key"

// Rules the server decides with before the authorization plugin is asked.
const (
	// RuleRunTokenScope denies a per-run token anything but its own run.
	RuleRunTokenScope = "run-token-scope"
)

// credentialKey returns the settings that give credential-builtin its key
// (nil when its configuration has one already), and a line to tell the
// person starting the server, if any. A server on an address other than
// loopback must be given a key; a loopback one generates one under home on
// first start.
func credentialKey(cfg Config, loopback bool, listen string) (map[string]any, string, error) {
	if cfg.SecretKeyPlugin == "" {
		return nil, "", nil
	}
	for _, spec := range cfg.Plugins {
		if spec.Name != cfg.SecretKeyPlugin {
			continue
		}
		if _, ok := spec.Config["key"]; ok {
			return nil, "", nil
		}
		if _, ok := spec.Config["key_file"]; ok {
			return nil, "", nil
		}
	}
	if v := os.Getenv(SecretKeyEnv); v != "" {
		// Read once: no process the server starts inherits it.
		_ = os.Unsetenv(SecretKeyEnv)
		return map[string]any{"key": v}, "", nil
	}
	if cfg.SecretKeyFile == "" {
		cfg.SecretKeyFile = os.Getenv(SecretKeyFileEnv)
	}
	if cfg.SecretKeyFile != "" {
		if _, err := os.Stat(cfg.SecretKeyFile); err != nil {
			return nil, "", fmt.Errorf("the credential key file: %w", err)
		}
		return map[string]any{"key_file": cfg.SecretKeyFile}, "", nil
	}
	if !loopback {
		return nil, "", fmt.Errorf("a server listening on %s needs the key its credentials are encrypted under, and none was given.\n"+
			"Make one with `palvella credential keygen /etc/palvella/secret.key` (or `head -c 32 /dev/urandom | base64`), keep a copy somewhere safe,\n"+
			"and start the server with --secret-key-file /etc/palvella/secret.key or with %s set to the key", listen, SecretKeyEnv)
	}
	path := filepath.Join(cfg.Home, SecretKeyFile)
	if _, err := os.Stat(path); err == nil {
		return map[string]any{"key_file": path}, "", nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("the credential key file: %w", err)
	}
	if err := WriteKeyFile(path); err != nil {
		return nil, "", err
	}
	return map[string]any{"key_file": path}, fmt.Sprintf("Generated the key that encrypts credentials: %s (mode 0600). Back it up: credentials cannot be read without it.", path), nil
}

// WriteKeyFile writes a new random credential key (base64 of 32 bytes) to
// path, readable by its owner only. It refuses to replace a file.
func WriteKeyFile(path string) error {
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return fmt.Errorf("generate a credential key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write the credential key: %w", err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(buf) + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("write the credential key to %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write the credential key to %s: %w", path, err)
	}
	return nil
}

// backend is what the API serves: the orchestrator, and the token and
// credential operations.
type backend struct {
	*orchestrator.Orchestrator
	*security
}

var (
	_ api.Security  = (*security)(nil)
	_ api.Backend   = backend{}
	_ api.Following = (*orchestrator.Orchestrator)(nil)
)

// security serves the token and credential routes through the plugins.
type security struct {
	mgr *pluginhost.Manager
	// choices name the plugin of each single-instance category.
	choices map[sdk.Category]string
	authz   api.Authorizer
	// managed is set on a server that has a management token of its own
	// (a loopback one): bootstrap is then refused.
	managed bool
	// home and url are where a managed server keeps cli.json and the URL
	// written in it.
	home, url string
	// mu serializes bootstrap, so that two callers cannot both be first,
	// and management token rotations.
	mu  sync.Mutex
	now func() time.Time
}

func (s *security) issuer(ctx context.Context) (authentication.TokenIssuer, error) {
	p, err := s.mgr.Plugin(s.choices[sdk.CategoryAuthentication])
	if err != nil {
		return nil, err
	}
	c, err := pluginhost.Client[authentication.Authentication](ctx, p, sdk.CategoryAuthentication)
	if err != nil {
		return nil, err
	}
	issuer, ok := c.(authentication.TokenIssuer)
	if !ok {
		return nil, sdk.Errorf(sdk.ErrUnimplemented, "", "%s does not issue tokens", s.choices[sdk.CategoryAuthentication])
	}
	return issuer, nil
}

func (s *security) credentials(ctx context.Context) (credential.Credential, error) {
	name := s.choices[sdk.CategoryCredential]
	if name == "" {
		return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "", "this server runs no credential plugin")
	}
	p, err := s.mgr.Plugin(name)
	if err != nil {
		return nil, err
	}
	return pluginhost.Client[credential.Credential](ctx, p, sdk.CategoryCredential)
}

// Bootstrap creates the first management token, once.
func (s *security) Bootstrap(ctx context.Context) (*api.NewToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.managed {
		return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "", "this server listens on loopback and keeps its management token in PALVELLA_HOME/%s; use that one", CLIConfigFile)
	}
	issuer, err := s.issuer(ctx)
	if err != nil {
		return nil, err
	}
	existing, err := issuer.ListTokens(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("look for earlier tokens: %w", err)
	}
	if len(existing) > 0 {
		return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "", "this server has issued tokens already: bootstrap works once; ask an admin for a token (`palvella token create`)")
	}
	t, err := issuer.CreateToken(ctx, &authentication.CreateTokenRequest{Owner: BootstrapOwner, Description: "management token from `palvella token bootstrap`", Roles: []string{"admin"}})
	if err != nil {
		return nil, err
	}
	return &api.NewToken{Token: t.Token, TokenMeta: t.Meta}, nil
}

var ownerRE = sized(`^[A-Za-z0-9][A-Za-z0-9._@-]*$`, 128)

// CreateToken issues a token whose roles, namespaces and lifetime do not
// exceed the caller's.
func (s *security) CreateToken(ctx context.Context, caller *authentication.Identity, req api.TokenRequest) (*api.NewToken, error) {
	if !caller.Authenticated() {
		return nil, sdk.Errorf(sdk.ErrUnauthenticated, "", "no authenticated caller")
	}
	if !ownerRE.MatchString(req.Name) {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "name", "%q is not a token name: 1 to 128 letters, digits, '.', '_', '@' or '-'", req.Name)
	}
	if len(req.Description) > 1024 {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "description", "longer than 1024 characters")
	}
	if len(req.Roles) == 0 {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "roles", "give the token at least one role")
	}
	var expires time.Duration
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			return nil, sdk.Errorf(sdk.ErrInvalidArgument, "expiresIn", "%q is not a positive duration such as 720h", req.ExpiresIn)
		}
		expires = d
	}
	now := s.now()
	if !caller.ExpiresAt.IsZero() && (expires == 0 || now.Add(expires).After(caller.ExpiresAt)) {
		return nil, sdk.Errorf(sdk.ErrPermissionDenied, "expiresIn", "a token may not outlive the token that creates it (%s expires at %s)", caller.Name, caller.ExpiresAt.UTC().Format(time.RFC3339))
	}
	for i, role := range req.Roles {
		if slices.Contains(caller.Roles, role) {
			continue
		}
		d, err := s.authz.Authorize(ctx, caller, "role:"+role, authorization.MethodWrite)
		if err != nil {
			return nil, fmt.Errorf("authorize granting role %q: %w", role, err)
		}
		if d == nil || !d.Allowed {
			return nil, sdk.Errorf(sdk.ErrPermissionDenied, fmt.Sprintf("roles[%d]", i), "%s may not grant the role %q: it does not hold it", caller.Name, role)
		}
	}
	namespaces := req.Namespaces
	if len(caller.Namespaces) > 0 {
		if len(namespaces) == 0 {
			namespaces = caller.Namespaces
		}
		for i, ns := range namespaces {
			if !slices.Contains(caller.Namespaces, ns) {
				return nil, sdk.Errorf(sdk.ErrPermissionDenied, fmt.Sprintf("namespaces[%d]", i), "%s is limited to the namespaces %s and may not issue a token for %q", caller.Name, strings.Join(caller.Namespaces, ", "), ns)
			}
		}
	}
	desc := req.Description
	if desc == "" {
		desc = "created by " + caller.Name
	}
	issuer, err := s.issuer(ctx)
	if err != nil {
		return nil, err
	}
	t, err := issuer.CreateToken(ctx, &authentication.CreateTokenRequest{Owner: req.Name, Description: desc,
		Roles: slices.Clone(req.Roles), Namespaces: slices.Clone(namespaces), ExpiresIn: expires})
	if err != nil {
		return nil, err
	}
	return &api.NewToken{Token: t.Token, TokenMeta: t.Meta}, nil
}

// ListTokens lists the tokens the caller may see: all of them for a caller
// limited to no namespace, those limited to some of its namespaces for
// one that is.
func (s *security) ListTokens(ctx context.Context, caller *authentication.Identity) ([]api.Token, error) {
	issuer, err := s.issuer(ctx)
	if err != nil {
		return nil, err
	}
	all, err := issuer.ListTokens(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make([]api.Token, 0, len(all))
	for _, m := range all {
		if tokenInScope(caller, m) {
			out = append(out, api.Token{TokenMeta: m, Management: m.Owner == ManagementOwner})
		}
	}
	return out, nil
}

// tokenInScope reports whether a caller may see and revoke a token: any
// token for a caller limited to no namespace; for one that is, tokens
// limited to some of its namespaces only (never a token of every
// namespace, such as the management token).
func tokenInScope(caller *authentication.Identity, m authentication.TokenMeta) bool {
	if !api.Limited(caller) {
		return true
	}
	if len(m.Namespaces) == 0 {
		return false
	}
	for _, ns := range m.Namespaces {
		if !api.InScope(caller, ns) {
			return false
		}
	}
	return true
}

// RevokeToken revokes a token by id; a caller limited to namespaces may
// revoke only tokens limited to some of them.
func (s *security) RevokeToken(ctx context.Context, caller *authentication.Identity, id string) (*api.Token, error) {
	issuer, err := s.issuer(ctx)
	if err != nil {
		return nil, err
	}
	if api.Limited(caller) {
		all, err := issuer.ListTokens(ctx, "")
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(all, func(m authentication.TokenMeta) bool { return m.ID == id })
		if i < 0 {
			return nil, sdk.Errorf(sdk.ErrNotFound, "id", "no token %q", id)
		}
		if !tokenInScope(caller, all[i]) {
			return nil, api.OutOfScope(caller, "token "+id+" (not limited to its namespaces)")
		}
	}
	m, err := issuer.RevokeToken(ctx, id)
	if err != nil {
		return nil, err
	}
	return &api.Token{TokenMeta: *m, Management: m.Owner == ManagementOwner}, nil
}

// maxCredentialBytes bounds a credential's data.
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

// remoteKey carries the request's remote address to the authenticator.
type remoteKey struct{}

// withRemote puts the host of the request's remote address in its
// context. Behind a reverse proxy every request has the proxy's address.
func withRemote(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), remoteKey{}, host)))
	})
}

// Failed authentication throttling.
const (
	// FreeAuthFailures is how many unknown tokens an address may present
	// before it is slowed down.
	FreeAuthFailures = 5
	// authFailureWindow is how long failures are remembered.
	authFailureWindow = 15 * time.Minute
	// maxAuthLockout caps the wait.
	maxAuthLockout = 5 * time.Minute
)

// throttle slows down addresses that present unknown tokens: after
// FreeAuthFailures of them, every request of the address is refused with
// 429 for a time that doubles with each further failure (1s, 2s, 4s... up
// to 5 minutes).
type throttle struct {
	mu  sync.Mutex
	m   map[string]*failures
	now func() time.Time
}

type failures struct {
	n     int
	last  time.Time
	until time.Time
}

func newThrottle() *throttle { return &throttle{m: map[string]*failures{}, now: time.Now} }

func (t *throttle) check(addr string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.m[addr]
	if f == nil {
		return nil
	}
	if wait := f.until.Sub(t.now()); wait > 0 {
		return sdk.Errorf(sdk.ErrResourceExhausted, "", "too many failed authentications from %s: try again in %s", addr, wait.Round(time.Second)+time.Second)
	}
	return nil
}

func (t *throttle) fail(addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.m) > 10000 {
		for k, f := range t.m {
			if now.Sub(f.last) > authFailureWindow {
				delete(t.m, k)
			}
		}
	}
	f := t.m[addr]
	if f == nil || now.Sub(f.last) > authFailureWindow {
		f = &failures{}
		t.m[addr] = f
	}
	f.n++
	f.last = now
	if over := f.n - FreeAuthFailures; over > 0 {
		wait := maxAuthLockout
		if over <= 10 {
			wait = min(time.Second<<(over-1), maxAuthLockout)
		}
		f.until = now.Add(wait)
	}
}

// authn authenticates API requests with the authentication plugin, and
// slows down addresses that guess.
type authn struct {
	mgr      *pluginhost.Manager
	plugin   string // the authentication plugin chosen
	throttle *throttle
}

// Authenticate returns the token's identity: authenticated, or with the
// status that says why not (expired, revoked, unknown).
func (a *authn) Authenticate(ctx context.Context, token string) (*authentication.Identity, error) {
	addr, _ := ctx.Value(remoteKey{}).(string)
	if err := a.throttle.check(addr); err != nil {
		return nil, err
	}
	p, err := a.mgr.Plugin(a.plugin)
	if err != nil {
		return nil, err
	}
	c, err := pluginhost.Client[authentication.Authentication](ctx, p, sdk.CategoryAuthentication)
	if err != nil {
		return nil, err
	}
	id, err := c.Authenticate(ctx, &authentication.AuthenticateRequest{Scheme: "bearer", Credentials: token, RemoteAddr: addr})
	if err != nil {
		if errors.Is(err, sdk.ErrInvalidArgument) || errors.Is(err, sdk.ErrUnauthenticated) {
			a.throttle.fail(addr)
		}
		return nil, err
	}
	if id == nil || id.Status == authentication.StatusUnknown || id.Status == authentication.StatusUnspecified {
		a.throttle.fail(addr)
		return authentication.Unknown(), nil
	}
	return id, nil
}

// runScope returns the one resource a per-run token may reach.
func runScope(id *authentication.Identity) (string, bool) {
	if id == nil || !strings.HasPrefix(id.Name, "run:") {
		return "", false
	}
	return id.Name, true
}

// scoped keeps per-run tokens inside their run before the authorization
// plugin decides.
type scoped struct{ next api.Authorizer }

func (a scoped) Authorize(ctx context.Context, id *authentication.Identity, res, method string) (*authorization.Decision, error) {
	if scope, ok := runScope(id); ok && res != scope && res != "identity:self" {
		return &authorization.Decision{Allowed: false, Rule: RuleRunTokenScope, Effect: authorization.EffectDeny,
			Reason: "a per-run token reaches its own run only (" + scope + ")"}, nil
	}
	return a.next.Authorize(ctx, id, res, method)
}

// namesCredentials reports whether a plugin configuration holds a
// {from_credential: NAME} value.
func namesCredentials(v any) bool {
	switch t := v.(type) {
	case map[string]any:
		if _, ok := fromCredential(t); ok {
			return true
		}
		for _, e := range t {
			if namesCredentials(e) {
				return true
			}
		}
	case []any:
		for _, e := range t {
			if namesCredentials(e) {
				return true
			}
		}
	}
	return false
}

// fromCredential returns NAME of a {from_credential: NAME} value.
func fromCredential(m map[string]any) (string, bool) {
	name, ok := m["from_credential"].(string)
	return name, ok && len(m) == 1
}

// addResolved adds plugins after replacing the {from_credential: NAME}
// values of their configuration with the credentials' values, read from
// the credential plugin now. The plugin receives the value; the
// configuration the core keeps names the credential only.
func addResolved(ctx context.Context, mgr *pluginhost.Manager, specs []pluginhost.Spec) error {
	if len(specs) == 0 {
		return nil
	}
	c, err := (&security{mgr: mgr}).credentials(ctx)
	if err != nil {
		return fmt.Errorf("plugin %s names credentials in its configuration: %w", specs[0].Name, err)
	}
	for _, spec := range specs {
		resolved, err := resolveCredentials(ctx, c, spec.Config, "config")
		if err != nil {
			return fmt.Errorf("configure plugin %s: %w", spec.Name, err)
		}
		spec.Config = resolved.(map[string]any)
		if _, err := mgr.Add(spec); err != nil {
			return err
		}
	}
	return nil
}

func resolveCredentials(ctx context.Context, c credential.Credential, v any, field string) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		if name, ok := fromCredential(t); ok {
			val, err := orchestrator.CredentialValue(ctx, c, name)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", field, err)
			}
			return val, nil
		}
		out := make(map[string]any, len(t))
		for k, e := range t {
			r, err := resolveCredentials(ctx, c, e, field+"."+k)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			r, err := resolveCredentials(ctx, c, e, fmt.Sprintf("%s[%d]", field, i))
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}
