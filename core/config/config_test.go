package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseFullFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "db.pass"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "palvella.yaml")
	data := `apiVersion: palvella.dev/v1
kind: ServerConfig
server:
  listen: 127.0.0.1:9000
  workers: 8
  no_worker: false
  shutdown_grace: 45s
database:
  plugin: database-other
  config:
    path: /var/lib/palvella/db
    password: {from_file: db.pass}
authorization:
  plugin: authorization-simple
  env:
    TOKEN: {from_env: AUTHZ_TOKEN}
plugins:
  job-terraform:
    config: {binary: /usr/bin/tofu}
engines:
  - name: build
    type: local
    shell: [bash, -c]
    environ: {GOFLAGS: -mod=mod}
    setup:
      actions:
        - name: prepare
          run: mkdir -p cache
    teardown:
      actions:
        - name: clean
          run: rm -rf cache
  - name: plain
    type: local
    default: true
`
	f, err := Parse(file, []byte(data), env(map[string]string{"AUTHZ_TOKEN": "tok"}))
	if err != nil {
		t.Fatal(err)
	}
	if f.Server["listen"] != "127.0.0.1:9000" || f.Server["workers"] != "8" || f.Server["shutdown-grace"] != "45s" || f.Server["no-worker"] != "false" {
		t.Errorf("server settings = %v", f.Server)
	}
	db := f.Choices[sdk.CategoryDatabase]
	if db.Name != "database-other" || db.Config["password"] != "s3cret" || db.Config["path"] != "/var/lib/palvella/db" {
		t.Errorf("database = %+v", db)
	}
	if a := f.Choices[sdk.CategoryAuthorization]; a.Name != "authorization-simple" || a.Env["TOKEN"] != "tok" {
		t.Errorf("authorization = %+v", a)
	}
	if _, ok := f.Choices[sdk.CategoryStorage]; ok {
		t.Error("storage was not configured, but has a choice")
	}
	if f.Plugins["job-terraform"].Config["binary"] != "/usr/bin/tofu" {
		t.Errorf("plugins = %+v", f.Plugins)
	}
	if len(f.Engines) != 2 || f.Default() != "plain" {
		t.Fatalf("engines = %+v, default %q", f.Engines, f.Default())
	}
	b := f.Engines[0]
	if b.Name != "build" || b.Type != "local" || len(b.Setup) != 1 || b.Setup[0].Name != "prepare" || len(b.Teardown) != 1 {
		t.Errorf("engine build = %+v", b)
	}
	if _, ok := b.Params["shell"]; !ok || b.Params["environ"] == nil {
		t.Errorf("engine build params = %v", b.Params)
	}
	if l := f.Line("engines[1].type"); l != 34 {
		t.Errorf("line of engines[1].type = %d, want 34", l)
	}
}

func TestDefaults(t *testing.T) {
	f, err := Load(filepath.Join(t.TempDir(), "none.yaml"), false)
	if err != nil {
		t.Fatal(err)
	}
	if f.Default() != "local" || len(f.Choices) != 0 || len(f.Engines) != 0 {
		t.Errorf("no file gives %+v", f)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none.yaml"), true); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("a required file that is missing: %v", err)
	}
}

// Every problem is named with the file, its line and its field.
func TestBadFiles(t *testing.T) {
	head := "apiVersion: palvella.dev/v1\nkind: ServerConfig\n"
	for _, tc := range []struct{ name, data, want string }{
		{"unknown top key", head + "databse:\n  plugin: x\n", "c.yaml:3: databse: unknown field"},
		{"unknown server key", head + "server:\n  listen: x\n  wrokers: 3\n", "c.yaml:5: server.wrokers: unknown field"},
		{"wrong type", head + "server:\n  workers: many\n", "c.yaml:4: server.workers: got string, want integer"},
		{"bad duration", head + "server:\n  shutdown_grace: 30 seconds\n", "c.yaml:4: server.shutdown_grace"},
		{"version", "apiVersion: palvella.dev/v2\nkind: ServerConfig\n", "c.yaml:1: apiVersion"},
		{"no kind", "apiVersion: palvella.dev/v1\n", "missing field \"kind\""},
		{"missing plugin", head + "database:\n  config: {}\n", "c.yaml:3: database: missing field \"plugin\""},
		{"wrong category", head + "database:\n  plugin: storage-filesystem\n", "c.yaml:4: database.plugin: \"storage-filesystem\" is named as a storage plugin"},
		{"unset env", head + "storage:\n  plugin: storage-x\n  config:\n    key: {from_env: NOPE_NOT_SET}\n", "c.yaml:6: storage.config.key: from_env: the server's environment has no variable NOPE_NOT_SET"},
		{"missing file", head + "storage:\n  plugin: storage-x\n  config:\n    key: {from_file: /nonexistent/k}\n", "c.yaml:6: storage.config.key: from_file: /nonexistent/k: no such file"},
		{"two defaults", head + "engines:\n  - {name: a, type: local, default: true}\n  - {name: b, type: local, default: true}\n", "c.yaml:5: engines[1].default: only one engine can be the default"},
		{"duplicate engine", head + "engines:\n  - {name: a, type: local}\n  - {name: a, type: local}\n", "c.yaml:5: engines[1].name: engine \"a\" is already defined"},
		{"bad setup action", head + "engines:\n  - name: a\n    type: local\n    setup:\n      actions:\n        - name: x\n          runn: echo\n", "c.yaml:8: engines[0].setup.actions[0]: an action needs a type"},
		{"credential in engine params", head + "engines:\n  - name: d\n    type: docker\n    login: {username: u, password: {from_credential: regpw}}\n", "engines[0].login.password: a named engine's parameters take secrets from the server's environment or files"},
		{"credential in setup", head + "engines:\n  - name: a\n    type: local\n    setup:\n      actions:\n        - name: x\n          run: echo\n          env: {T: {from_credential: c}}\n", "engines[0].setup.actions[0].env.T: an engine's setup actions take secrets"},
		{"yaml syntax", head + "server: [\n", "c.yaml:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tc.data), env(nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// A secret's value never appears in an error.
func TestSecretNotInErrors(t *testing.T) {
	data := "apiVersion: palvella.dev/v1\nkind: ServerConfig\nstorage:\n  plugin: storage-x\n  config:\n    key: {from_env: K}\n    other: {from_env: MISSING}\n"
	_, err := Parse("c.yaml", []byte(data), env(map[string]string{"K": "hunter2"}))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("apiVersion: palvella.dev/v1\nkind: ServerConfig\nserver: {listen: x}\n"))
	f.Add([]byte("apiVersion: palvella.dev/v1\nkind: ServerConfig\nengines: [{name: a, type: local, setup: {actions: [{name: x, run: y}]}}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("c.yaml", data, env(nil))
		if err == nil && cfg == nil {
			t.Fatal("no error and no configuration")
		}
	})
}

func TestPublishedSchemaIsCurrent(t *testing.T) {
	published, err := os.ReadFile("../../docs/server-config.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(published) != string(Schema()) {
		t.Error("docs/server-config.schema.json differs from core/config/schema.json: copy it")
	}
}
