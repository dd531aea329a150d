package core_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/palvella/palvella/"

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// packages lists the module's packages with their imports and dependencies.
func packages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,Deps", "./...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var list []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		list = append(list, p)
	}
	return list
}

// top is a package's top-level folder: core, plugins, plugin-sdk, ...
func top(path string) string {
	rel := strings.TrimPrefix(path, module)
	first, _, _ := strings.Cut(rel, "/")
	return first
}

// The layers point one way (ARCHITECTURE.md): cmd -> core -> plugin-sdk
// -> proto, cmd -> registry, plugins -> plugin-sdk. plugin-sdk never
// imports core (an author's plugin must not pull in the server), plugins
// never import core (they reach it over gRPC only), core never imports
// plugins (the builtins are wired in cmd), and registry stands alone.
func TestImportsPointOneWay(t *testing.T) {
	allowed := map[string][]string{
		"cmd":        {"cmd", "core", "plugin-sdk", "proto", "plugins", "registry"},
		"core":       {"core", "plugin-sdk", "proto"},
		"plugin-sdk": {"plugin-sdk", "proto"},
		"proto":      {"proto"},
		"plugins":    {"plugins", "plugin-sdk", "proto"},
		"registry":   {"registry"},
		"bench":      {"plugin-sdk", "proto", "bench"},
		"examples":   {"examples", "plugin-sdk", "proto"},
		// deploy holds manifests and the test that applies them; it may
		// run the engine the manifests deploy, never the core.
		"deploy": {"deploy", "plugins", "plugin-sdk", "proto"},
	}
	for _, p := range packages(t) {
		from := top(p.ImportPath)
		ok, known := allowed[from]
		if !known {
			t.Errorf("package %s is in a folder the layering does not know (%s): add it to this test", p.ImportPath, from)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			to := top(imp)
			found := false
			for _, a := range ok {
				found = found || a == to
			}
			if !found {
				t.Errorf("%s imports %s: %s may not import %s", strings.TrimPrefix(p.ImportPath, module), strings.TrimPrefix(imp, module), from, to)
			}
		}
	}
}

// The HTTP layer (core/api) is wired by the server; the orchestrator and
// the client speak its shapes (core/api/wire) only.
func TestOnlyTheServerImportsTheHTTPLayer(t *testing.T) {
	allowed := map[string]bool{"core/server": true, "core/api/apitest": true}
	for _, p := range packages(t) {
		from := strings.TrimPrefix(p.ImportPath, module)
		for _, imp := range p.Imports {
			if imp == module+"core/api" && !allowed[from] && top(p.ImportPath) != "cmd" {
				t.Errorf("%s imports core/api, the HTTP layer; use core/api/wire for the API's shapes", from)
			}
		}
	}
}

// The Go client of the API does not pull in the plugin host, gRPC or
// go-plugin: a program that only talks to a server stays small.
func TestClientStaysLight(t *testing.T) {
	for _, p := range packages(t) {
		if p.ImportPath != module+"core/client" && p.ImportPath != module+"core/api/wire" {
			continue
		}
		for _, dep := range p.Deps {
			if strings.Contains(dep, "hashicorp/go-plugin") || strings.Contains(dep, "google.golang.org/grpc") || dep == module+"core/pluginhost" || dep == module+"core/api" {
				t.Errorf("%s depends on %s", strings.TrimPrefix(p.ImportPath, module), dep)
			}
		}
		if len(p.Deps) > 250 {
			t.Errorf("%s depends on %d packages; it used to be about 190", strings.TrimPrefix(p.ImportPath, module), len(p.Deps))
		}
	}
}
