// Command testplugin is a credential plugin that misbehaves on request, for
// the plugin host's tests. Its first argument picks the behaviour:
//
//	serve            a well-behaved in-memory credential plugin
//	stdout-before    prints a line on stdout before the handshake
//	wrong-cookie     a go-plugin plugin built for another host's cookie
//	protocol-2       speaks only plugin protocol 2
//	exit             exits with status 3 before the handshake
//
// In serve mode, Get("block") blocks until the call is cancelled,
// Get("slow") answers with the plugin's pid after 500ms, and Get("env")
// returns the plugin's environment. PLUGIN_VERSION, if set, is the version
// it describes itself with.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/credential"
)

type plugin struct {
	mu   sync.Mutex
	data map[string]*credential.Secret
	cfg  map[string]any
}

func (p *plugin) Describe(context.Context) (*sdk.Manifest, error) {
	version := "1.2.3"
	if v := os.Getenv("PLUGIN_VERSION"); v != "" {
		version = v
	}
	return &sdk.Manifest{Name: "testplugin", Version: version, Description: "test plugin"}, nil
}

func (p *plugin) Configure(_ context.Context, req *sdk.ConfigureRequest) (*sdk.ConfigureResponse, error) {
	if v, ok := req.Config["reject"].(string); ok {
		return &sdk.ConfigureResponse{Diagnostics: []sdk.Diagnostic{{Severity: sdk.SeverityError, Summary: v, Field: "config.reject"}}}, nil
	}
	p.mu.Lock()
	p.cfg = req.Config
	p.mu.Unlock()
	return &sdk.ConfigureResponse{}, nil
}

func (p *plugin) Put(ctx context.Context, req *credential.PutRequest) (*credential.Meta, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if req.Name == "" {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "name", "must not be empty")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	m := credential.Meta{Name: req.Name, Type: req.Type}
	p.data[req.Name] = &credential.Secret{Meta: m, Data: req.Data}
	return &m, nil
}

func (p *plugin) Get(ctx context.Context, name string) (*credential.Secret, error) {
	switch name {
	case "block":
		<-ctx.Done()
		return nil, ctx.Err()
	case "env":
		return &credential.Secret{Meta: credential.Meta{Name: "env"}, Data: map[string][]byte{"value": []byte(strings.Join(os.Environ(), "\n"))}}, nil
	case "slow":
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		return &credential.Secret{Meta: credential.Meta{Name: "slow"}, Data: map[string][]byte{"value": []byte(fmt.Sprint(os.Getpid()))}}, nil
	case "pid":
		return &credential.Secret{Meta: credential.Meta{Name: "pid"}, Data: map[string][]byte{"value": []byte(fmt.Sprint(os.Getpid()))}}, nil
	case "config":
		p.mu.Lock()
		defer p.mu.Unlock()
		return &credential.Secret{Meta: credential.Meta{Name: "config"}, Data: map[string][]byte{"value": []byte(fmt.Sprint(p.cfg))}}, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.data[name]
	if !ok {
		return nil, sdk.Errorf(sdk.ErrNotFound, "name", "credential %q not found", name)
	}
	return s, nil
}

func (p *plugin) Delete(ctx context.Context, name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.data, name)
	return nil
}

func (p *plugin) List(ctx context.Context, prefix string) ([]credential.Meta, error) {
	return nil, nil
}

func main() {
	mode := "serve"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	p := &plugin{data: map[string]*credential.Secret{}}
	switch mode {
	case "stdout-before":
		fmt.Println("hello from a plugin that prints too early")
	case "wrong-cookie":
		goplugin.Serve(&goplugin.ServeConfig{
			HandshakeConfig: goplugin.HandshakeConfig{ProtocolVersion: 1, MagicCookieKey: "OTHER_PRODUCT_PLUGIN", MagicCookieValue: "other"},
			Plugins:         goplugin.PluginSet{"plugin": &sdk.BasePlugin{Impl: p}},
			GRPCServer:      goplugin.DefaultGRPCServer,
		})
		return
	case "protocol-2":
		goplugin.Serve(&goplugin.ServeConfig{
			HandshakeConfig:  sdk.Handshake,
			VersionedPlugins: map[int]goplugin.PluginSet{2: {"plugin": &sdk.BasePlugin{Impl: p}}},
			GRPCServer:       goplugin.DefaultGRPCServer,
		})
		return
	case "exit":
		fmt.Fprintln(os.Stderr, "cannot start: missing something")
		os.Exit(3)
	}
	sdk.Serve(p, credential.Service(p))
}
