// Package credentialpython_test runs the credential conformance kit against
// credential-python, a plugin written in Python, launched as a real process
// through the same go-plugin path the core uses.
package credentialpython_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/palvella/palvella/examples/plugins/internal/exampletest"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
)

// interpreter is the Python that plugin.py names on its first line. Debian's
// python3-grpcio, python3-protobuf and python3-cryptography install into it.
const interpreter = "/usr/bin/python3"

var (
	setupOnce sync.Once
	setupErr  error
)

// requirePython fails the test, saying what to install, when the interpreter
// of plugin.py or one of the modules the plugin needs is missing.
func requirePython(t *testing.T) {
	t.Helper()
	setupOnce.Do(func() {
		if _, err := os.Stat(interpreter); err != nil {
			setupErr = errors.New(interpreter + " is not installed: the credential-python plugin runs with it " +
				"(Debian: apt-get install python3 python3-grpcio python3-protobuf python3-cryptography)")
			return
		}
		out, err := exec.Command(interpreter, "-c", "import grpc, google.protobuf, cryptography").CombinedOutput()
		if err != nil {
			setupErr = errors.New(interpreter + " cannot import the modules the credential-python plugin needs " +
				"(Debian: apt-get install python3-grpcio python3-protobuf python3-cryptography): " +
				err.Error() + "\n" + string(out))
		}
	})
	if setupErr != nil {
		t.Fatal(setupErr)
	}
}

// pluginCmd runs plugin.py itself, as the core does: its first line, not
// the python3 on PATH, chooses the interpreter.
func pluginCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	requirePython(t)
	script, err := filepath.Abs("plugin.py")
	if err != nil {
		t.Fatal(err)
	}
	return exec.Command(script, args...)
}

// TestPlugin runs the tests every example plugin shares
// (examples/plugins/internal/exampletest): the credential conformance kit
// and how the plugin behaves as a process.
func TestPlugin(t *testing.T) {
	exampletest.Kit{Name: "credential-python", Cmd: pluginCmd}.Run(t)
}

// TestIgnoresThePython3OnPath puts a python3 that cannot run the plugin first
// on PATH, as a pyenv or a virtualenv without grpc does: the plugin, named by
// its path as the core runs it, must still start.
func TestIgnoresThePython3OnPath(t *testing.T) {
	dir := t.TempDir()
	fake := "#!/bin/sh\necho 'this python3 has no grpc' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(dir, "python3"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := pluginCmd(t)
	cmd.Env = []string{"PATH=" + dir + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	p := sdktest.Launch(t, cmd)
	if err := p.RPC.Ping(); err != nil {
		t.Fatalf("health check with another python3 first on PATH: %v", err)
	}
}

// TestStubsAreUpToDate regenerates the checked-in Python stubs with
// generate.sh and compares. It needs protoc and grpc_python_plugin (Debian:
// protobuf-compiler, protobuf-compiler-grpc), which running the plugin does
// not, so it fails without them, saying what to install.
func TestStubsAreUpToDate(t *testing.T) {
	for _, tool := range []string{"protoc", "grpc_python_plugin"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (Debian: apt-get install protobuf-compiler protobuf-compiler-grpc): the stubs cannot be checked", tool)
		}
	}
	out := filepath.Join(t.TempDir(), "palvella_pb")
	if b, err := exec.Command("./generate.sh", out).CombinedOutput(); err != nil {
		t.Fatalf("generate.sh: %v\n%s", err, b)
	}
	want := map[string][]byte{}
	err := filepath.WalkDir(out, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(out, path)
		want[rel], err = os.ReadFile(path)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	err = filepath.WalkDir("palvella_pb", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "__pycache__" {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel("palvella_pb", path)
		got[rel], err = os.ReadFile(path)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range want {
		if g, ok := got[name]; !ok {
			t.Errorf("palvella_pb/%s is missing: run ./generate.sh in examples/plugins/credential-python", name)
		} else if !bytes.Equal(g, w) {
			t.Errorf("palvella_pb/%s is stale: run ./generate.sh in examples/plugins/credential-python", name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("palvella_pb/%s is not generated any more: run ./generate.sh in examples/plugins/credential-python", name)
		}
	}
}
