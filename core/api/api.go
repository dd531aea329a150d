// Package api is Palvella's HTTP API: versioned JSON routes under /api/v1
// over a [Backend], every route but the health check authenticated with a
// bearer token and authorized per resource and method.
//
// Actions on a resource are path segments (POST .../runs/{run}/cancel,
// POST /api/v1/pipelines/apply) rather than Google-style ":verb" suffixes,
// because net/http's ServeMux matches wildcards on whole segments only.
//
// The route table ([Routes]) is the one place routes are declared; the
// OpenAPI document (docs/api/openapi.yaml, served at
// /api/v1/openapi.yaml) is kept in step with it by a test.
package api

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"gopkg.in/yaml.v3"
)

// OpenAPI is the OpenAPI 3 document of the API. It is a copy of
// docs/api/openapi.yaml; a test keeps the two equal.
//
//go:embed openapi.yaml
var OpenAPI []byte

// Default limits.
const (
	DefaultMaxPipelineBytes = 1 << 20
	DefaultMaxJSONBytes     = 64 << 10
	// MaxPageSize is the largest pageSize a list accepts.
	MaxPageSize = 1000
)

// Options tunes the API. The zero value is ready to use.
type Options struct {
	// MaxPipelineBytes limits the body of apply and validate (default
	// 1 MiB).
	MaxPipelineBytes int64
	// MaxJSONBytes limits JSON request bodies (default 64 KiB).
	MaxJSONBytes int64
	// Version is reported by the health route.
	Version string
}

type server struct {
	b     Backend
	authn Authenticator
	authz Authorizer
	opts  Options
	// paths matches a path against every route pattern whatever the
	// method, to tell 405 from 404.
	paths   *http.ServeMux
	methods map[string][]string
}

// New returns the API's handler. authn and authz are asked about every
// request but those to public routes.
func New(b Backend, authn Authenticator, authz Authorizer, opts Options) http.Handler {
	if opts.MaxPipelineBytes <= 0 {
		opts.MaxPipelineBytes = DefaultMaxPipelineBytes
	}
	if opts.MaxJSONBytes <= 0 {
		opts.MaxJSONBytes = DefaultMaxJSONBytes
	}
	s := &server{b: b, authn: authn, authz: authz, opts: opts, paths: http.NewServeMux(), methods: map[string][]string{}}
	mux := http.NewServeMux()
	for _, rt := range routes() {
		mux.Handle(rt.Method+" "+rt.Pattern, s.handler(rt))
		if _, ok := s.methods[rt.Pattern]; !ok {
			s.paths.Handle(rt.Pattern, http.NotFoundHandler())
		}
		s.methods[rt.Pattern] = append(s.methods[rt.Pattern], rt.Method)
	}
	mux.HandleFunc(Prefix+"/", s.noRoute)
	return mux
}

func (s *server) noRoute(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.paths.Handler(r); pattern != "" {
		allowed := append([]string(nil), s.methods[pattern]...)
		sort.Strings(allowed)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, ErrorResponse{Error: ErrorBody{Code: "method_not_allowed",
			Message: fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allowed, ", "))}})
		return
	}
	writeError(w, sdk.Errorf(sdk.ErrNotFound, "", "no route %s %s", r.Method, r.URL.Path))
}

// call is one request being served.
type call struct {
	w  http.ResponseWriter
	r  *http.Request
	id *authentication.Identity
	// source is the pipeline file of BodyPipeline routes.
	source []byte
	// file is "<namespace>/<name>" from the pipeline file, empty when it
	// could not be read.
	file, fileNamespace string
	// credential is the credential in the path as its owner has it
	// ("<namespace>/<name>" or "<name>"), for {credential}.
	credential string
	limit      int64
}

// pathNames are the path wildcards that end up in resource strings; they
// must be plain names so that a resource string cannot be forged.
var pathNames = []string{"ns", "name", "run"}

// nameRE bounds no length: a repetition such as {0,252} compiles to
// hundreds of states, a millisecond at the start of every process of this
// binary, builtin plugins included. validName checks the length.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func validName(s string) bool { return len(s) <= 253 && nameRE.MatchString(s) }

func (s *server) handler(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &call{w: w, r: r}
		if err := s.serve(rt, c); err != nil {
			writeError(w, err)
		}
	})
}

func (s *server) serve(rt Route, c *call) error {
	if !rt.Public {
		id, err := s.authenticate(c.r)
		if err != nil {
			return err
		}
		c.id = id
	}
	for _, n := range pathNames {
		if v := c.r.PathValue(n); v != "" && !validName(v) {
			return sdk.Errorf(sdk.ErrInvalidArgument, n, "%q is not a valid name (letters, digits, '.', '-' and '_')", v)
		}
	}
	switch rt.Body {
	case BodyPipeline:
		c.limit = s.opts.MaxPipelineBytes
		src, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, c.limit))
		if err != nil {
			return fmt.Errorf("read the pipeline file: %w", err)
		}
		c.source = src
		if err := c.readFileMeta(); err != nil {
			return err
		}
	case BodyJSON:
		c.limit = s.opts.MaxJSONBytes
	}
	if !rt.Public {
		if err := s.resolveCredential(c, rt.Resource); err != nil {
			return err
		}
		res, ok := c.resource(rt.Resource)
		if ok {
			if err := s.keepInScope(c, rt, res); err != nil {
				return err
			}
			if err := s.authorize(c, res, rt.Permission); err != nil {
				return err
			}
		} else if err := s.unreadableFile(c); err != nil {
			return err
		}
	}
	return rt.handle(s, c)
}

// unreadableFile answers a pipeline file whose metadata could not be read,
// so the resource it is about is unknown: it is only validated (which
// reads and changes nothing on the server) and its problems returned.
func (s *server) unreadableFile(c *call) error {
	if err := s.b.ValidatePipeline(c.r.Context(), c.filename(), c.source); err != nil {
		return fmt.Errorf("validate %s: %w", c.filename(), err)
	}
	return sdk.Errorf(sdk.ErrInvalidArgument, "metadata.name", "the pipeline file has no valid metadata.name and metadata.namespace")
}

func (s *server) authenticate(r *http.Request) (*authentication.Identity, error) {
	h := r.Header.Get("Authorization")
	scheme, token, _ := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if h == "" {
		return nil, sdk.Errorf(sdk.ErrUnauthenticated, "", "missing Authorization: Bearer token")
	}
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, sdk.Errorf(sdk.ErrUnauthenticated, "", "the Authorization header must be \"Bearer TOKEN\"")
	}
	id, err := s.authn.Authenticate(r.Context(), token)
	if err != nil {
		if errors.Is(err, sdk.ErrUnauthenticated) || errors.Is(err, sdk.ErrInvalidArgument) || errors.Is(err, sdk.ErrNotFound) {
			return nil, sdk.Errorf(sdk.ErrUnauthenticated, "", "the token is not valid")
		}
		return nil, fmt.Errorf("authenticate the request: %w", err)
	}
	if !id.Authenticated() {
		msg := "the token is not valid"
		if id != nil {
			switch id.Status {
			case authentication.StatusExpired:
				msg = "the token has expired"
			case authentication.StatusRevoked:
				msg = "the token has been revoked"
			}
		}
		return nil, sdk.Errorf(sdk.ErrUnauthenticated, "", "%s", msg)
	}
	return id, nil
}

func (s *server) authorize(c *call, res, method string) error {
	d, err := s.authz.Authorize(c.r.Context(), c.id, res, method)
	if err != nil {
		return fmt.Errorf("authorize %s on %s: %w", method, res, err)
	}
	if d == nil || !d.Allowed {
		msg := fmt.Sprintf("%s may not %s %s", c.id.Name, method, res)
		if d != nil && d.Reason != "" {
			msg += ": " + d.Reason
		}
		return sdk.Errorf(sdk.ErrPermissionDenied, "", "%s", msg)
	}
	return nil
}

// resource expands a route's resource template for this request. It
// reports false when the template needs the pipeline file's metadata and
// it could not be read.
func (c *call) resource(tmpl string) (string, bool) {
	if strings.Contains(tmpl, "{file}") && c.file == "" {
		return "", false
	}
	pipeline := c.r.URL.Query().Get("pipeline")
	if pipeline == "" {
		pipeline = "*"
	} else {
		pipeline += "/*"
	}
	return strings.NewReplacer(
		"{ns}", c.r.PathValue("ns"),
		"{name}", c.r.PathValue("name"),
		"{run}", runResource(c.r.PathValue("run")),
		"{pipeline}", pipeline,
		"{file}", c.file,
		"{credential}", c.credential,
	).Replace(tmpl), true
}

// readFileMeta reads metadata.name and metadata.namespace from the
// pipeline file (YAML, or JSON which is YAML too). The `namespace` query
// parameter overrides the file's namespace.
func (c *call) readFileMeta() error {
	q := c.r.URL.Query()
	ns := q.Get("namespace")
	if ns != "" && !validName(ns) {
		return sdk.Errorf(sdk.ErrInvalidArgument, "namespace", "%q is not a valid namespace", ns)
	}
	if len(q.Get("filename")) > 1024 {
		return sdk.Errorf(sdk.ErrInvalidArgument, "filename", "longer than 1024 characters")
	}
	c.fileNamespace = ns
	var doc struct {
		Metadata struct {
			Name      string `yaml:"name"`
			Namespace string `yaml:"namespace"`
		} `yaml:"metadata"`
	}
	if err := yaml.Unmarshal(c.source, &doc); err != nil {
		return nil // the backend's validation says what is wrong
	}
	if ns == "" {
		ns = doc.Metadata.Namespace
	}
	if ns == "" {
		ns = "default"
	}
	if validName(ns) && validName(doc.Metadata.Name) {
		c.file = ns + "/" + doc.Metadata.Name
	}
	return nil
}

func (c *call) filename() string {
	if f := c.r.URL.Query().Get("filename"); f != "" {
		return f
	}
	return "pipeline.yaml"
}

// page reads the paging query parameters.
func (c *call) page() (PageRequest, error) {
	q := c.r.URL.Query()
	p := PageRequest{Token: q.Get("pageToken")}
	if v := q.Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > MaxPageSize {
			return p, sdk.Errorf(sdk.ErrInvalidArgument, "pageSize", "must be a whole number from 0 to %d, not %q", MaxPageSize, v)
		}
		p.Size = n
	}
	if len(p.Token) > 4096 {
		return p, sdk.Errorf(sdk.ErrInvalidArgument, "pageToken", "longer than 4096 characters")
	}
	return p, nil
}

// decode reads a JSON object body into dst, a pointer to a struct. An
// empty body is an empty object. Errors name the field that is wrong.
func (c *call) decode(dst any, fields ...string) error {
	b, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, c.limit))
	if err != nil {
		return fmt.Errorf("read the request body: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	return decodeJSON(b, dst, fields...)
}
