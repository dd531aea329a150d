package client_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/client"
	"github.com/palvella/palvella/registry/internal/regtest"
	"github.com/palvella/palvella/registry/registrytest"
)

// A registry whose address drops every packet (a firewall, a dead route)
// fails the install within the configured connect timeout, naming the
// registry and saying how to go on without it; --registry then works.
func TestConnectTimeoutToUnreachableRegistry(t *testing.T) {
	f := regtest.NewRegistry(t, "acme")
	publishVersions(t, f, "1.0.0")
	public := client.Registry{Name: "public", Location: registrytest.Blackhole(t), RootKeys: []ed25519.PublicKey{f.RootPub}}
	owned := reg(f, f.Dir)
	owned.Names = []string{"engine-*"}
	c := newClient(t, public, owned)
	cfg := &client.Config{Timeouts: client.TimeoutsConfig{Connect: "700ms"}}
	httpc, err := cfg.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	c.HTTPClient = httpc

	start := time.Now()
	_, err = c.Install(context.Background(), client.Request{Name: plugin})
	took := time.Since(start)
	var re *registry.Error
	if !errors.Is(err, registry.ErrUnreachable) || !errors.As(err, &re) || re.Registry != "public" ||
		!strings.Contains(re.Hint, "--registry") || !strings.Contains(re.Hint, "registry remove public") {
		t.Fatalf("blackholed public registry: %v", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("the cause is not a timeout: %v", err)
	}
	if took < 700*time.Millisecond || took > 5*time.Second {
		t.Errorf("gave up after %s, want just over the 700ms connect timeout", took)
	}
	t.Log(err)

	c.Only = "acme"
	if _, err := c.Install(context.Background(), client.Request{Name: plugin, Registry: "acme"}); err != nil {
		t.Fatalf("with the registry chosen: %v", err)
	}
}

func TestTimeoutsConfigRefusesBadDurations(t *testing.T) {
	for field, tc := range map[string]client.TimeoutsConfig{
		"connect": {Connect: "soon"},
		"header":  {Header: "-1s"},
		"idle":    {Idle: "0s"},
		"total":   {Total: "10"},
	} {
		if _, err := tc.Parse(); err == nil || !strings.Contains(err.Error(), "timeouts."+field) {
			t.Errorf("%+v: %v, want a refusal naming timeouts.%s", tc, err, field)
		}
	}
	got, err := client.TimeoutsConfig{Connect: "2s", Total: "1h"}.Parse()
	if err != nil || got.Connect != 2*time.Second || got.Total != time.Hour || got.Idle != 0 {
		t.Fatalf("Parse: %+v %v", got, err)
	}
}
