package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildGreeter builds a real plugin (its own module, on the SDK) reporting
// the given version, the way an outside author would build one.
func buildGreeter(t *testing.T, dir string, versions ...string) map[string]string {
	t.Helper()
	return buildGreeterNamed(t, dir, "credential-greeter", versions...)
}

// buildGreeterNamed builds the greeter plugin under another plugin name,
// for tests that need several installed plugins.
func buildGreeterNamed(t *testing.T, dir, name string, versions ...string) map[string]string {
	t.Helper()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
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

var name, version = "credential-greeter", "0.0.0"

type greeter struct{}

func (greeter) Describe(context.Context) (*sdk.Manifest, error) {
	return &sdk.Manifest{Name: name, Version: version, Description: "Says hello."}, nil
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
	bins := map[string]string{}
	for _, v := range versions {
		out := filepath.Join(dir, "greeter-"+v)
		if name != "credential-greeter" {
			out = filepath.Join(dir, name+"-"+v)
		}
		cmd := exec.Command("go", "build", "-o", out, "-ldflags", "-X main.version="+v+" -X main.name="+name, ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build greeter %s: %v\n%s", v, err, msg)
		}
		bins[v] = out
	}
	return bins
}

// must runs palvella and fails the test unless it exits 0.
func must(t *testing.T, home string, args ...string) string {
	t.Helper()
	out, errOut, code := palvella(t, home, args...)
	if code != 0 {
		t.Fatalf("palvella %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// refused runs palvella and fails the test unless it exits non-zero; it
// returns stderr.
func refused(t *testing.T, home string, args ...string) string {
	t.Helper()
	out, errOut, code := palvella(t, home, args...)
	if code == 0 {
		t.Fatalf("palvella %s succeeded, want a refusal\nstdout: %s", strings.Join(args, " "), out)
	}
	return errOut
}

// newHome returns a PALVELLA_HOME that does not read the public registry
// (the tests have no network).
func newHome(t *testing.T) string {
	home := t.TempDir()
	must(t, home, "registry", "remove", "public")
	return home
}

// serveRegistry runs `palvella registry serve` on a free loopback port and
// returns its URL and a function that stops it with SIGINT.
func serveRegistry(t *testing.T, dir string) (string, func()) {
	t.Helper()
	cmd := exec.Command(palvellaBin, "registry", "serve", dir, "--listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("registry serve printed nothing: %v", err)
	}
	i := strings.Index(line, "http://")
	if i < 0 {
		cmd.Process.Kill()
		t.Fatalf("registry serve did not print its URL: %q", line)
	}
	url := strings.TrimSpace(line[i:])
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Errorf("interrupt registry serve: %v", err)
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("registry serve did not stop cleanly on SIGINT: %v", err)
		}
	}
	t.Cleanup(stop)
	return url, stop
}

func readLock(t *testing.T, home string) map[string]map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(home, "plugins.lock"))
	if err != nil {
		t.Fatal(err)
	}
	var lf struct {
		Plugins []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(data, &lf); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, e := range lf.Plugins {
		out[e["name"].(string)] = e
	}
	return out
}

func installedRow(t *testing.T, home, name string) pluginRow {
	t.Helper()
	var rows []pluginRow
	if err := json.Unmarshal([]byte(must(t, home, "plugin", "list", "-o", "json")), &rows); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("plugin list does not show %s", name)
	return pluginRow{}
}

func TestRegistryEndToEnd(t *testing.T) {
	work := t.TempDir()
	bins := buildGreeter(t, work, "1.0.0", "1.0.1", "1.0.2", "1.1.0", "2.0.0-rc.1")
	key := filepath.Join(work, "root.key")
	reg := filepath.Join(work, "acme")
	const name = "credential-greeter"

	must(t, work, "registry", "keygen", "--out", key)
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key: %v, mode %v; want 0600", err, st.Mode())
	}
	must(t, work, "registry", "init", reg, "--name", "acme", "--root-key", key)
	for _, v := range []string{"1.0.0", "1.0.1", "1.1.0", "2.0.0-rc.1"} {
		must(t, work, "registry", "publish", reg, "--key", key, "--plugin", bins[v], "--name", name, "--version", v,
			"--license", "Apache-2.0", "--description", "Says hello")
	}
	// A version that is not the binary's is refused.
	if msg := refused(t, work, "registry", "publish", reg, "--key", key, "--plugin", bins["1.0.2"], "--name", name, "--version", "1.0.3"); !strings.Contains(msg, "1.0.2") {
		t.Errorf("publishing under the wrong version: stderr %q should name the binary's version", msg)
	}
	url, stop := serveRegistry(t, reg)

	home := newHome(t)
	must(t, home, "registry", "add", "acme", url, "--root-key", key+".pub")
	var regs struct {
		Registries []registryRow `json:"registries"`
	}
	if err := json.Unmarshal([]byte(must(t, home, "registry", "list", "-o", "json")), &regs); err != nil {
		t.Fatal(err)
	}
	if len(regs.Registries) != 1 || regs.Registries[0].Name != "acme" || regs.Registries[0].SeenVersion == 0 {
		t.Fatalf("registry list = %+v, want acme alone, already read", regs.Registries)
	}

	t.Run("add resolves the constraint", func(t *testing.T) {
		var row installRow
		if err := json.Unmarshal([]byte(must(t, home, "plugin", "add", name+"@~1.0", "-o", "json")), &row); err != nil {
			t.Fatal(err)
		}
		if row.Version != "1.0.1" || row.Registry != "acme" || len(row.SignedBy) != 1 {
			t.Fatalf("plugin add %s@~1.0 = %+v, want 1.0.1 from acme, signed", name, row)
		}
		if r := installedRow(t, home, name); r.Source != "installed" || r.State != "ready" || r.Version != "1.0.1" {
			t.Fatalf("plugin list row = %+v, want installed, ready, 1.0.1", r)
		}
	})

	t.Run("info shows every version with its status", func(t *testing.T) {
		must(t, work, "registry", "yank", reg, "--key", key, name, "1.0.0", "--reason", "says goodbye instead")
		var info pluginInfo
		if err := json.Unmarshal([]byte(must(t, home, "plugin", "info", name, "-o", "json")), &info); err != nil {
			t.Fatal(err)
		}
		got := map[string]versionRow{}
		var order []string
		for _, v := range info.Versions {
			got[v.Version] = v
			order = append(order, v.Version)
		}
		if strings.Join(order, " ") != "2.0.0-rc.1 1.1.0 1.0.1 1.0.0" {
			t.Errorf("versions in order %v, want newest first", order)
		}
		if got["1.0.0"].Status != "yanked" || got["1.0.0"].Yanked != "says goodbye instead" || got["1.1.0"].Status != "ok" || !got["1.0.1"].Installed {
			t.Errorf("info = %+v", info.Versions)
		}
		// A yanked version is installed only when pinned with --allow-yanked.
		if msg := refused(t, home, "plugin", "add", name+"@1.0.0"); !strings.Contains(msg, "yanked") {
			t.Errorf("exact pin of a yanked version: stderr %q", msg)
		}
	})

	t.Run("upgrade stays within the constraint", func(t *testing.T) {
		must(t, work, "registry", "publish", reg, "--key", key, "--plugin", bins["1.0.2"], "--name", name, "--version", "1.0.2")
		out := must(t, home, "plugin", "upgrade")
		if !strings.Contains(out, "1.0.1 -> 1.0.2") {
			t.Fatalf("plugin upgrade printed %q, want 1.0.1 -> 1.0.2 (1.1.0 is outside ~1.0)", out)
		}
		if out := must(t, home, "plugin", "upgrade", name); !strings.Contains(out, "newest version allowed") {
			t.Errorf("second upgrade printed %q", out)
		}
		if e := readLock(t, home)[name]; e["version"] != "1.0.2" || e["constraint"] != "~1.0" {
			t.Errorf("lock entry = %v", e)
		}
	})

	t.Run("describe launches the installed plugin", func(t *testing.T) {
		var m struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		}
		if err := json.Unmarshal([]byte(must(t, home, "plugin", "describe", name, "-o", "json")), &m); err != nil {
			t.Fatal(err)
		}
		if m.Name != name || m.Version != "1.0.2" {
			t.Fatalf("describe = %+v", m)
		}
		must(t, home, "plugin", "verify")
	})

	t.Run("export and import work with no server", func(t *testing.T) {
		bundle := filepath.Join(work, "acme.tar.gz")
		must(t, work, "registry", "export", url, "--root-key", key+".pub", "--out", bundle)
		stop()
		offline := filepath.Join(t.TempDir(), "mirror")
		must(t, work, "registry", "import", bundle, "--dir", offline, "--root-key", key+".pub")
		h := newHome(t)
		must(t, h, "registry", "add", "acme", offline, "--root-key", key+".pub")
		var row installRow
		if err := json.Unmarshal([]byte(must(t, h, "plugin", "add", name+"@^1", "-o", "json")), &row); err != nil {
			t.Fatal(err)
		}
		if row.Version != "1.1.0" || row.Registry != "acme" {
			t.Fatalf("install from the imported bundle = %+v, want 1.1.0", row)
		}
		// A prerelease only when the constraint names one.
		if err := json.Unmarshal([]byte(must(t, h, "plugin", "add", name+"@>=2.0.0-rc.0", "-o", "json")), &row); err != nil {
			t.Fatal(err)
		}
		if row.Version != "2.0.0-rc.1" {
			t.Fatalf("prerelease install = %+v", row)
		}
	})

	t.Run("a folder registry works with no server", func(t *testing.T) {
		h := newHome(t)
		must(t, h, "registry", "add", "acme", reg, "--root-key", key+".pub")
		must(t, h, "plugin", "add", name+"@1.1.0")
		if r := installedRow(t, h, name); r.Version != "1.1.0" || r.State != "ready" {
			t.Fatalf("row = %+v", r)
		}
		must(t, h, "plugin", "remove", name)
		if _, err := os.Stat(filepath.Join(h, "plugins", name)); !os.IsNotExist(err) {
			t.Errorf("plugin files remain after remove: %v", err)
		}
		if msg := refused(t, h, "plugin", "remove", "engine-local"); !strings.Contains(msg, "builtin") {
			t.Errorf("removing a builtin: %q", msg)
		}
	})

	t.Run("a modified binary fails verify and is refused at launch", func(t *testing.T) {
		path := readLock(t, home)[name]["path"].(string)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/2] ^= 0xff
		if err := os.WriteFile(path, data, 0o755); err != nil {
			t.Fatal(err)
		}
		_, errOut, code := palvella(t, home, "plugin", "verify")
		if code == 0 || !strings.Contains(errOut, "failed verification") {
			t.Fatalf("plugin verify: exit %d, stderr %q; want a failure", code, errOut)
		}
		out, _, _ := palvella(t, home, "plugin", "verify", "-o", "json")
		var rows []verifyRow
		if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 || rows[0].OK || !strings.Contains(rows[0].Problem, "checksum") {
			t.Fatalf("plugin verify -o json = %s (%v)", out, err)
		}
		if r := installedRow(t, home, name); r.State != "modified" {
			t.Errorf("plugin list state %q, want modified", r.State)
		}
		if msg := refused(t, home, "plugin", "describe", name); !strings.Contains(msg, "sha256 is not the one recorded") {
			t.Errorf("describe of a modified binary: stderr %q, want the checksum refusal", msg)
		}
	})
}

func TestPluginAddRefusesBadRootKey(t *testing.T) {
	work := t.TempDir()
	bins := buildGreeter(t, work, "1.0.0")
	key, wrong := filepath.Join(work, "root.key"), filepath.Join(work, "wrong.key")
	reg := filepath.Join(work, "acme")
	must(t, work, "registry", "keygen", "--out", key)
	must(t, work, "registry", "keygen", "--out", wrong)
	must(t, work, "registry", "init", reg, "--name", "acme", "--root-key", key)
	must(t, work, "registry", "publish", reg, "--key", key, "--plugin", bins["1.0.0"], "--license", "MIT")

	home := newHome(t)
	msg := refused(t, home, "registry", "add", "acme", reg, "--root-key", wrong+".pub")
	if !strings.Contains(msg, "registry: signature not trusted") {
		t.Fatalf("registry add with the wrong root key: stderr %q, want the library's signature refusal", msg)
	}
	// A configuration that pins the wrong key (say, the registry rotated
	// its key) refuses the install with the library's message.
	pub, err := os.ReadFile(wrong + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	cfg := `{"registries":[{"name":"acme","location":"` + reg + `","rootKeys":["` + strings.TrimSpace(string(pub)) + `"]}],"policy":{}}`
	if err := os.WriteFile(filepath.Join(home, "registries.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	msg = refused(t, home, "plugin", "add", "credential-greeter")
	if !strings.Contains(msg, "registry: signature not trusted") || !strings.Contains(msg, "acme") {
		t.Fatalf("plugin add: stderr %q, want the signature refusal naming the registry", msg)
	}
	if _, err := os.Stat(filepath.Join(home, "plugins.lock")); !os.IsNotExist(err) {
		t.Errorf("a lock file was written after a refusal: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(home, "plugins"))
	if len(entries) != 0 {
		t.Errorf("plugin directory not empty after a refusal: %v", entries)
	}
}

func TestPluginAddLocalBinary(t *testing.T) {
	work := t.TempDir()
	bin := buildGreeter(t, work, "0.4.0")["0.4.0"]
	home := t.TempDir()
	msg := refused(t, home, "plugin", "add", bin)
	if !strings.Contains(msg, "not signed") || !strings.Contains(msg, "--allow-unsigned") {
		t.Fatalf("plugin add of a local binary without the flag: stderr %q, want why and what to do", msg)
	}
	if _, err := os.Stat(filepath.Join(home, "plugins.lock")); !os.IsNotExist(err) {
		t.Fatalf("refused local install wrote the lock: %v", err)
	}
	must(t, home, "plugin", "add", bin, "--allow-unsigned")
	if e := readLock(t, home)["credential-greeter"]; e["source"] != "local" || e["version"] != "0.4.0" {
		t.Fatalf("lock entry = %v", e)
	}
	if r := installedRow(t, home, "credential-greeter"); r.State != "ready" || r.Source != "installed" {
		t.Fatalf("row = %+v", r)
	}
	out := must(t, home, "plugin", "describe", "credential-greeter", "-o", "json")
	if !strings.Contains(out, `"version": "0.4.0"`) {
		t.Fatalf("describe = %s", out)
	}
}

func TestPublicIndexVerifiesWithEmbeddedKey(t *testing.T) {
	index := filepath.Join(repoRoot, "registry.json")
	out := must(t, t.TempDir(), "registry", "verify", index, "--no-download", "-o", "json")
	var rep verifyReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Registry != "public" || rep.Plugins == 0 || len(rep.Problems) != 0 {
		t.Fatalf("verify registry.json = %+v", rep)
	}
	exp, err := time.Parse(time.RFC3339, rep.Expires)
	if err != nil || time.Until(exp) < 30*24*time.Hour {
		t.Errorf("registry.json expires %s: re-sign it (make registry-index) well before it expires", rep.Expires)
	}
	// registry.json is signed by the root key that maintainers keep
	// offline, so it lags behind the builtins: a builtin added since is a
	// first-party name anyway (the client passes every builtin's name as
	// first-party, whatever the index lists), and it is published at the
	// next `make registry-index` if REGISTRY_PLUGINS names it. So: every
	// plugin the index lists is a builtin, and every builtin is either in
	// the index or in REGISTRY_PLUGINS.
	var listed struct {
		Plugins []struct {
			Name string `json:"name"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(readFile(t, index)), &listed); err != nil {
		t.Fatal(err)
	}
	inIndex := map[string]bool{}
	for _, p := range listed.Plugins {
		inIndex[p.Name] = true
	}
	isBuiltin := map[string]bool{}
	makefile := readFile(t, filepath.Join(repoRoot, "Makefile"))
	for _, b := range builtins() {
		isBuiltin[b.Name] = true
		if !inIndex[b.Name] && !strings.Contains(makefile, strings.Replace(b.Name, "-", "/", 1)) {
			t.Errorf("builtin %s is neither in registry.json nor in the Makefile's REGISTRY_PLUGINS, so no signing of registry.json would publish it", b.Name)
		}
	}
	for name := range inIndex {
		if !isBuiltin[name] {
			t.Errorf("registry.json lists %s, which is not a builtin", name)
		}
	}
	if rep.Plugins != len(inIndex) {
		t.Errorf("verify counted %d plugins, the index lists %d", rep.Plugins, len(inIndex))
	}
	// The same index with one byte of a plugin description changed is refused.
	tampered := filepath.Join(t.TempDir(), "registry.json")
	if err := os.WriteFile(tampered, []byte(strings.Replace(readFile(t, index), "Apache-2.0", "Apache-2.1", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if msg := refused(t, t.TempDir(), "registry", "verify", tampered, "--no-download"); !strings.Contains(msg, "signature") {
		t.Errorf("tampered index: stderr %q", msg)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
