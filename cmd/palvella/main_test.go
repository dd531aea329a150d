package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// palvellaBin is the real palvella binary the end-to-end tests run: the one
// `make test` built (PALVELLA_BIN), or one built here.
var palvellaBin string

// repoRoot is the repository's root directory.
var repoRoot string

func TestMain(m *testing.M) {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	repoRoot = filepath.Join(wd, "..", "..")
	palvellaBin = os.Getenv("PALVELLA_BIN")
	var tmp string
	if palvellaBin == "" {
		tmp, err = os.MkdirTemp("", "palvella-cli-test")
		if err != nil {
			panic(err)
		}
		palvellaBin = filepath.Join(tmp, "palvella")
		if out, err := exec.Command("go", "build", "-o", palvellaBin, ".").CombinedOutput(); err != nil {
			panic("build palvella: " + err.Error() + "\n" + string(out))
		}
	}
	code := m.Run()
	if tmp != "" {
		os.RemoveAll(tmp)
	}
	os.Exit(code)
}

// palvella runs the binary with a private PALVELLA_HOME and returns stdout,
// stderr and the exit code.
func palvella(t *testing.T, home string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(palvellaBin, args...)
	cmd.Env = append(os.Environ(), "PALVELLA_HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run palvella %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

func TestVersionJSON(t *testing.T) {
	out, errOut, code := palvella(t, t.TempDir(), "version", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var v struct {
		Version          string `json:"version"`
		ProtocolVersions []int  `json:"protocolVersions"`
		Platform         string `json:"platform"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("version -o json is not JSON: %v\n%s", err, out)
	}
	if v.Version == "" || len(v.ProtocolVersions) == 0 || v.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Fatalf("version = %+v", v)
	}
}

func TestPluginListShowsEveryBuiltin(t *testing.T) {
	out, errOut, code := palvella(t, t.TempDir(), "plugin", "list", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rows []pluginRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("plugin list -o json is not JSON: %v\n%s", err, out)
	}
	got := map[string]pluginRow{}
	for _, r := range rows {
		got[r.Name] = r
	}
	for _, b := range builtins() {
		r, ok := got[b.Name]
		if !ok {
			t.Errorf("builtin %s missing from plugin list", b.Name)
			continue
		}
		if r.Source != "builtin" || r.State != "ready" || r.Version == "" || len(r.Categories) == 0 {
			t.Errorf("row for %s = %+v, want a ready builtin with version and categories", b.Name, r)
		}
	}
	table, _, _ := palvella(t, t.TempDir(), "plugin", "list")
	if !strings.HasPrefix(table, "NAME") || !strings.Contains(table, "CATEGORIES") {
		t.Errorf("table output lacks its header:\n%s", table)
	}
}

func TestPluginDescribeEveryBuiltin(t *testing.T) {
	for _, b := range builtins() {
		t.Run(b.Name, func(t *testing.T) {
			out, errOut, code := palvella(t, t.TempDir(), "plugin", "describe", b.Name, "-o", "json")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var m struct {
				Name       string   `json:"name"`
				Version    string   `json:"version"`
				Categories []string `json:"categories"`
			}
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, out)
			}
			if m.Name != b.Name || m.Version != b.Version {
				t.Errorf("manifest says %s %s, builtin table says %s %s", m.Name, m.Version, b.Name, b.Version)
			}
			for _, c := range b.Categories {
				if !strings.Contains(strings.Join(m.Categories, ","), c.String()) {
					t.Errorf("manifest categories %v lack %s", m.Categories, c)
				}
			}
		})
	}
}

func TestPluginDescribeUnknownName(t *testing.T) {
	_, errOut, code := palvella(t, t.TempDir(), "plugin", "describe", "no-such-plugin")
	if code == 0 || !strings.Contains(errOut, `no plugin named "no-such-plugin"`) || !strings.Contains(errOut, "give its path") {
		t.Fatalf("exit %d, stderr %q: want a failure naming the plugin and suggesting a path", code, errOut)
	}
}

func TestBadOutputFormat(t *testing.T) {
	_, errOut, code := palvella(t, t.TempDir(), "plugin", "list", "-o", "yaml")
	if code == 0 || !strings.Contains(errOut, `--output "yaml": must be table or json`) {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

// TestOutsideAuthorPlugin writes a plugin the way an outside author would:
// its own module, depending on the SDK only, built with go build, and
// described by the palvella binary through the plugin host.
func TestOutsideAuthorPlugin(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/greeter\n\ngo 1.26\n\nrequire github.com/palvella/palvella v0.0.0\n\nreplace github.com/palvella/palvella => "+repoRoot+"\n")
	sum, err := os.ReadFile(filepath.Join(repoRoot, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write("go.sum", string(sum))
	write("main.go", `package main

import (
	"context"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/credential"
)

type greeter struct{}

func (greeter) Describe(context.Context) (*sdk.Manifest, error) {
	return &sdk.Manifest{Name: "greeter", Version: "0.3.0", Description: "Says hello."}, nil
}
func (greeter) Configure(context.Context, *sdk.ConfigureRequest) (*sdk.ConfigureResponse, error) {
	return &sdk.ConfigureResponse{}, nil
}
func (greeter) Put(context.Context, *credential.PutRequest) (*credential.Meta, error) { return nil, sdk.ErrUnimplemented }
func (greeter) Get(_ context.Context, name string) (*credential.Secret, error) {
	return &credential.Secret{Meta: credential.Meta{Name: name}, Data: map[string][]byte{"value": []byte("hello")}}, nil
}
func (greeter) Delete(context.Context, string) error                     { return sdk.ErrUnimplemented }
func (greeter) List(context.Context, string) ([]credential.Meta, error) { return nil, nil }

func main() { sdk.Serve(greeter{}, credential.Service(greeter{})) }
`)
	goCmd := func(args ...string) {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %v: %v\n%s", args, err, out)
		}
	}
	goCmd("build", "-o", "greeter", ".")

	out, errOut, code := palvella(t, t.TempDir(), "plugin", "describe", filepath.Join(dir, "greeter"), "-o", "json")
	if code != 0 {
		t.Fatalf("describe exit %d: %s", code, errOut)
	}
	var m struct {
		Name             string   `json:"name"`
		Version          string   `json:"version"`
		Categories       []string `json:"categories"`
		ProtocolVersions []int    `json:"protocolVersions"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if m.Name != "greeter" || m.Version != "0.3.0" || strings.Join(m.Categories, ",") != "credential" || len(m.ProtocolVersions) != 1 || m.ProtocolVersions[0] != 1 {
		t.Fatalf("manifest = %+v", m)
	}

	// Run by hand, the binary says what it is instead of hanging.
	cmd := exec.Command(filepath.Join(dir, "greeter"))
	msg, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(msg), "This program is a Palvella plugin") {
		t.Fatalf("running the plugin by hand: err %v, output %q", err, msg)
	}
	// --describe works without the handshake.
	desc, err := exec.Command(filepath.Join(dir, "greeter"), "--describe").Output()
	if err != nil || !strings.Contains(string(desc), `"name": "greeter"`) {
		t.Fatalf("--describe: err %v, output %s", err, desc)
	}
}
