// Package credentialnode_test runs the credential conformance kit against
// credential-node, a plugin written in Node.js, launched as a real process
// through the same go-plugin path the core uses.
package credentialnode_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/palvella/palvella/examples/plugins/internal/exampletest"
)

var (
	setupOnce sync.Once
	nodePath  string
	setupErr  error
)

// node returns the path of the node binary, after installing the plugin's
// dependencies with `npm ci` if they are missing. It fails the test, with
// what to install, when node or npm is not there.
func node(t *testing.T) string {
	t.Helper()
	setupOnce.Do(func() {
		nodePath, setupErr = exec.LookPath("node")
		if setupErr != nil {
			setupErr = errors.New("node is not installed: install Node.js 18 or newer with npm (Debian: apt-get install nodejs npm) to run the credential-node plugin")
			return
		}
		if _, err := os.Stat(filepath.Join("node_modules", "@grpc", "grpc-js")); err == nil {
			return
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			setupErr = errors.New("npm is not installed: install npm (Debian: apt-get install npm) so the test can run `npm ci` for the credential-node plugin")
			return
		}
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		if out, err := cmd.CombinedOutput(); err != nil {
			setupErr = errors.New("npm ci in examples/plugins/credential-node failed: " + err.Error() + "\n" + string(out))
		}
	})
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	return nodePath
}

func pluginCmd(t *testing.T, args ...string) *exec.Cmd {
	script, err := filepath.Abs("index.js")
	if err != nil {
		t.Fatal(err)
	}
	return exec.Command(node(t), append([]string{script}, args...)...)
}

// TestPlugin runs the tests every example plugin shares
// (examples/plugins/internal/exampletest): the credential conformance kit
// and how the plugin behaves as a process.
func TestPlugin(t *testing.T) {
	exampletest.Kit{Name: "credential-node", Cmd: pluginCmd}.Run(t)
}
