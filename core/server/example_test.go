package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/client"
	"github.com/palvella/palvella/core/pluginhost"
	"github.com/palvella/palvella/core/server"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// Embed a Palvella server in a Go program: the program chooses the plugins
// (here the first-party ones, served by the palvella binary as
// `palvella plugin serve NAME`; any plugin binary works the same way), the
// server runs the orchestrator, its worker and the API on loopback, and
// the program drives it with the Go client.
func Example() {
	bin, cleanup, err := palvellaBinary()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()
	sum, err := pluginhost.SHA256File(bin)
	if err != nil {
		fmt.Println(err)
		return
	}
	home, _ := os.MkdirTemp("", "palvella-embedded-")
	defer os.RemoveAll(home)

	plugin := func(name string, c sdk.Category, config map[string]any) pluginhost.Spec {
		return pluginhost.Spec{Name: name, Source: pluginhost.SourceBuiltin, Path: bin, Args: []string{"plugin", "serve", name},
			SHA256: sum, Categories: []sdk.Category{c}, Config: config}
	}
	under := func(key, name string) map[string]any { return map[string]any{key: filepath.Join(home, name)} }
	cfg := server.Config{
		Home:   home,
		Listen: "127.0.0.1:0", // any free port
		Plugins: []pluginhost.Spec{
			plugin("database-sqlite", sdk.CategoryDatabase, under("path", "palvella.db")),
			plugin("storage-filesystem", sdk.CategoryStorage, under("root", "storage")),
			plugin("credential-builtin", sdk.CategoryCredential, under("path", "credentials.db")),
			plugin("authentication-token", sdk.CategoryAuthentication, under("path", "tokens.db")),
			plugin("authorization-rbac", sdk.CategoryAuthorization, nil),
			plugin("action-standard", sdk.CategoryAction, nil),
			plugin("engine-local", sdk.CategoryEngine, nil),
		},
		SecretKeyPlugin: "credential-builtin", // it takes the key credentials are encrypted under
		Triggers:        server.TriggerConfig{WebhookListen: "off"},
		Logger:          hclog.NewNullLogger(), // or the program's own hclog logger
	}
	ready := make(chan string, 1)
	cfg.Ready = func(url string) { ready <- url }
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, cfg) }()
	defer func() { stop(); <-done }()
	var url string
	select {
	case url = <-ready:
	case err := <-done:
		fmt.Println("server:", err)
		return
	}

	// A server on loopback writes a management token for the local CLI.
	var cli server.CLIConfig
	data, _ := os.ReadFile(filepath.Join(home, server.CLIConfigFile))
	_ = json.Unmarshal(data, &cli)
	c, err := client.New(url, cli.Token)
	if err != nil {
		fmt.Println(err)
		return
	}
	pipeline := `apiVersion: palvella.dev/v1
kind: Pipeline
metadata: {name: hello}
spec:
  jobs:
    - name: greet
      actions:
        - name: say
          run: echo "hello from an embedded Palvella"
`
	if _, err := c.ApplyPipeline(ctx, api.ApplyRequest{Filename: "hello.yaml", Source: []byte(pipeline)}); err != nil {
		fmt.Println(err)
		return
	}
	run, err := c.StartRun(ctx, "default", "hello", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for deadline := time.Now().Add(time.Minute); !run.Status.Terminal() && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		if run, err = c.GetRun(ctx, "default", run.Name); err != nil {
			fmt.Println(err)
			return
		}
	}
	fmt.Println(run.Name, run.Status)
	log, err := c.ActionLog(ctx, "default", run.Name, "greet", "say")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer log.Close()
	b, _ := io.ReadAll(log)
	fmt.Println(strings.TrimSpace(lastField(string(b))))
	// Output:
	// hello-1 success
	// hello from an embedded Palvella
}

// lastField is the text of a stored log line, without its timestamp and
// stream ("2026-... stdout hello").
func lastField(line string) string {
	if f := strings.SplitN(line, " ", 3); len(f) == 3 {
		return f[2]
	}
	return line
}

// palvellaBinary is the palvella binary: PALVELLA_BIN (which make test
// sets), or one built for the example.
func palvellaBinary() (string, func(), error) {
	if bin := os.Getenv("PALVELLA_BIN"); bin != "" {
		return bin, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "palvella-bin-")
	if err != nil {
		return "", nil, err
	}
	bin := filepath.Join(dir, "palvella")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/palvella").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("build palvella: %v\n%s", err, out)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}
