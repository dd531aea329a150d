package api

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestOpenAPICopyIsInStep(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "api", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, OpenAPI) {
		t.Fatalf("core/api/openapi.yaml differs from docs/api/openapi.yaml: copy docs/api/openapi.yaml over it")
	}
}

// TestOpenAPIDescribesEveryRoute checks that every route is in the document
// with its resource and permission, and that the document has no route the
// API does not serve.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	var doc struct {
		OpenAPI string `yaml:"openapi"`
		Paths   map[string]map[string]struct {
			OperationID string            `yaml:"operationId"`
			Security    *[]map[string]any `yaml:"security"`
			Resource    string            `yaml:"x-palvella-resource"`
			Permission  string            `yaml:"x-palvella-permission"`
			Scope       string            `yaml:"x-palvella-scope"`
			Responses   map[string]any    `yaml:"responses"`
		} `yaml:"paths"`
	}
	if err := yaml.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi = %q, want 3.x", doc.OpenAPI)
	}
	inDoc := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			inDoc[strings.ToUpper(method)+" "+path] = true
		}
	}
	served := map[string]bool{}
	for _, rt := range Routes() {
		key := rt.Method + " " + rt.Pattern
		served[key] = true
		op, ok := doc.Paths[rt.Pattern][strings.ToLower(rt.Method)]
		if !ok {
			t.Errorf("%s is not in openapi.yaml", key)
			continue
		}
		if op.OperationID == "" || len(op.Responses) == 0 {
			t.Errorf("%s: no operationId or responses", key)
		}
		if rt.Public {
			if op.Security == nil || len(*op.Security) != 0 {
				t.Errorf("%s is public but the document does not say security: []", key)
			}
			continue
		}
		if op.Resource != rt.Resource || op.Permission != rt.Permission {
			t.Errorf("%s: document says %s on %q, the API asks %s on %q", key, op.Permission, op.Resource, rt.Permission, rt.Resource)
		}
		if op.Scope != string(rt.Scope) {
			t.Errorf("%s: document says x-palvella-scope %q, the route has %q", key, op.Scope, rt.Scope)
		}
		if _, ok := op.Responses["401"]; !ok {
			t.Errorf("%s: no 401 response documented", key)
		}
		if _, ok := op.Responses["403"]; !ok {
			t.Errorf("%s: no 403 response documented", key)
		}
	}
	var extra []string
	for k := range inDoc {
		if !served[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		t.Errorf("openapi.yaml has %s, which the API does not serve", k)
	}
}

func TestOpenAPIIsServed(t *testing.T) {
	f := newFixture(t, Options{})
	r := f.do(t, http.MethodGet, "/api/v1/openapi.yaml", "admin-token", "")
	if r.status != http.StatusOK || !bytes.Equal(r.body, OpenAPI) || r.header.Get("Content-Type") != "application/yaml" {
		t.Errorf("status %d type %q, %d bytes", r.status, r.header.Get("Content-Type"), len(r.body))
	}
}
