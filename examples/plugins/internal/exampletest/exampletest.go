// Package exampletest holds the tests that the example plugins in other
// languages share: the credential conformance kit and how the plugin
// behaves as a process (the cookie, --describe, health, shutdown, its
// configuration, host services through the broker, the handshake line).
// Each example's test gives the command that runs its plugin.
package exampletest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/credential"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
)

// Kit runs the shared tests against one example plugin.
type Kit struct {
	// Name is the plugin's name in its manifest.
	Name string
	// Cmd returns the command that runs the plugin with args, as the core
	// would run it; it fails t when what the plugin needs is missing.
	Cmd func(t *testing.T, args ...string) *exec.Cmd
}

// Run runs every shared test, each as a subtest.
func (k Kit) Run(t *testing.T) {
	t.Run("Conformance", k.conformance)
	t.Run("RefusesToRunWithoutTheCookie", k.refusesToRunWithoutTheCookie)
	t.Run("DescribeFlag", k.describeFlag)
	t.Run("DescribeOverGRPCMatchesTheFlag", k.describeOverGRPCMatchesTheFlag)
	t.Run("HealthCheckAndCleanShutdown", k.healthCheckAndCleanShutdown)
	t.Run("ConfigureReportsBadSettingsByField", k.configureReportsBadSettingsByField)
	t.Run("MaxCredentialsIsResourceExhausted", k.maxCredentialsIsResourceExhausted)
	t.Run("ReplaceKeepsCreationTime", k.replaceKeepsCreationTime)
	t.Run("CallsHostServicesThroughTheBroker", k.callsHostServicesThroughTheBroker)
	t.Run("HandshakeLine", k.handshakeLine)
}

// launch starts a fresh plugin process and returns its credential client,
// configured with config.
func (k Kit) launch(t *testing.T, config map[string]any) (*sdktest.Process, credential.Credential) {
	t.Helper()
	p := sdktest.Launch(t, k.Cmd(t))
	c := sdktest.Dispense[credential.Credential](t, p, sdk.CategoryCredential)
	resp, err := c.Configure(context.Background(), &sdk.ConfigureRequest{Config: config})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if sdk.HasErrors(resp.Diagnostics) {
		t.Fatalf("Configure(%v) returned diagnostics: %+v", config, resp.Diagnostics)
	}
	return p, c
}

func (k Kit) conformance(t *testing.T) {
	sdktest.CredentialSuite(t, func(t *testing.T) credential.Credential {
		_, c := k.launch(t, map[string]any{})
		return c
	})
}

func (k Kit) refusesToRunWithoutTheCookie(t *testing.T) {
	cmd := k.Cmd(t)
	cmd.Env = sdktest.MinimalEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("run without the magic cookie: error = %v, want exit status 1", err)
	}
	if !strings.Contains(stderr.String(), "is a Palvella plugin") || !strings.Contains(stderr.String(), "--describe") {
		t.Errorf("stderr does not say what the program is and how to describe it:\n%s", stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("printed on stdout without the cookie: %q", stdout.String())
	}
}

func (k Kit) describeFlag(t *testing.T) {
	cmd := k.Cmd(t, sdk.DescribeFlag)
	cmd.Env = sdktest.MinimalEnv()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("--describe: %v", err)
	}
	var m sdk.Manifest
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("--describe printed something that is not a manifest: %v\n%s", err, out)
	}
	if m.Name != k.Name || m.Version == "" {
		t.Errorf("manifest names %q version %q, want %s and a version", m.Name, m.Version, k.Name)
	}
	if !m.Provides(sdk.CategoryCredential) {
		t.Errorf("manifest categories %v do not include credential", m.Categories)
	}
	if len(m.ProtocolVersions) == 0 || m.ConfigSchema["type"] != "object" {
		t.Errorf("manifest lacks protocol versions or a config schema: %+v", m)
	}
}

func (k Kit) describeOverGRPCMatchesTheFlag(t *testing.T) {
	_, c := k.launch(t, nil)
	m, err := c.Describe(context.Background())
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if m.Name != k.Name || !m.Provides(sdk.CategoryCredential) || len(m.ProtocolVersions) != 1 || m.ProtocolVersions[0] != 1 {
		t.Errorf("Describe over gRPC = %+v", m)
	}
	props, _ := m.ConfigSchema["properties"].(map[string]any)
	if _, ok := props["max_credentials"]; !ok {
		t.Errorf("config schema over gRPC lost its properties: %v", m.ConfigSchema)
	}
}

func (k Kit) healthCheckAndCleanShutdown(t *testing.T) {
	cmd := k.Cmd(t)
	p := sdktest.Launch(t, cmd)
	if err := p.RPC.Ping(); err != nil {
		t.Fatalf("health check of service \"plugin\": %v", err)
	}
	p.Client.Kill() // asks the plugin to stop through GRPCController.Shutdown
	if cmd.ProcessState == nil {
		t.Fatal("plugin process still running after Kill")
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("plugin exited with %d after Shutdown, want 0 (a clean exit, not a kill)", code)
	}
}

func (k Kit) configureReportsBadSettingsByField(t *testing.T) {
	p := sdktest.Launch(t, k.Cmd(t))
	c := sdktest.Dispense[credential.Credential](t, p, sdk.CategoryCredential)
	resp, err := c.Configure(context.Background(), &sdk.ConfigureRequest{Config: map[string]any{"max_credentials": "many", "colour": "blue"}})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	fields := map[string]bool{}
	for _, d := range resp.Diagnostics {
		if d.Severity == sdk.SeverityError {
			fields[d.Field] = true
		}
	}
	if !fields["config.max_credentials"] || !fields["config.colour"] || len(fields) != 2 {
		t.Errorf("diagnostics %+v, want one error about config.max_credentials and one about config.colour", resp.Diagnostics)
	}
}

func (k Kit) maxCredentialsIsResourceExhausted(t *testing.T) {
	_, c := k.launch(t, map[string]any{"max_credentials": 1})
	ctx := context.Background()
	put := func(name string) error {
		_, err := c.Put(ctx, &credential.PutRequest{Name: name, Type: "Text", Data: map[string][]byte{"value": []byte("v")}})
		return err
	}
	if err := put("first"); err != nil {
		t.Fatalf("Put(first): %v", err)
	}
	if err := put("first"); err != nil {
		t.Fatalf("replacing the one credential at the limit: %v", err)
	}
	if err := put("second"); !errors.Is(err, sdk.ErrResourceExhausted) {
		t.Fatalf("Put beyond max_credentials: error = %v, want sdk.ErrResourceExhausted", err)
	}
}

func (k Kit) replaceKeepsCreationTime(t *testing.T) {
	_, c := k.launch(t, nil)
	ctx := context.Background()
	first, err := c.Put(ctx, &credential.PutRequest{Name: "k", Data: map[string][]byte{"value": []byte("1")}})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	second, err := c.Put(ctx, &credential.PutRequest{Name: "k", Data: map[string][]byte{"value": []byte("2")}})
	if err != nil {
		t.Fatalf("Put again: %v", err)
	}
	if first.CreatedAt.IsZero() || !second.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("created at %v then %v, want the same non-zero time", first.CreatedAt, second.CreatedAt)
	}
	if second.UpdatedAt.Before(first.UpdatedAt) {
		t.Errorf("updated at went back from %v to %v", first.UpdatedAt, second.UpdatedAt)
	}
}

// logHost is a host that offers only the log service, and records what it
// receives.
type logHost struct {
	mu    sync.Mutex
	lines []string
}

func (h *logHost) Log(_ context.Context, _ sdk.LogLevel, msg string, _ map[string]string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, msg)
	return nil
}

func (h *logHost) ReadCredential(context.Context, string, string) ([]byte, error) {
	return nil, sdk.ErrUnimplemented
}

func (h *logHost) PutObject(context.Context, string, io.Reader) error { return sdk.ErrUnimplemented }

func (h *logHost) GetObject(context.Context, string) (io.ReadCloser, error) {
	return nil, sdk.ErrUnimplemented
}

func (h *logHost) Exec(context.Context, *sdk.HostExecRequest, func(string, []byte)) (*sdk.HostExecResult, error) {
	return nil, sdk.ErrUnimplemented
}

func (k Kit) callsHostServicesThroughTheBroker(t *testing.T) {
	p := sdktest.Launch(t, k.Cmd(t))
	c := sdktest.Dispense[credential.Credential](t, p, sdk.CategoryCredential)
	host := &logHost{}
	if _, err := c.Configure(context.Background(), &sdk.ConfigureRequest{Config: map[string]any{}, Host: host}); err != nil {
		t.Fatalf("Configure with host services: %v", err)
	}
	host.mu.Lock()
	defer host.mu.Unlock()
	if len(host.lines) != 1 || host.lines[0] != k.Name+" configured" {
		t.Fatalf("host log received %q, want the plugin's line", host.lines)
	}
}

// TestHandshakeLine starts the plugin by hand, as a host in another
// language would, and checks the line it prints and the certificate in it.
func (k Kit) handshakeLine(t *testing.T) {
	hostCert := selfSigned(t)
	cmd := k.Cmd(t)
	cmd.Env = append(sdktest.MinimalEnv(),
		sdk.MagicCookieKey+"="+sdk.MagicCookieValue,
		"PLUGIN_PROTOCOL_VERSIONS=1,7",
		"PLUGIN_UNIX_SOCKET_DIR="+t.TempDir(),
		"PLUGIN_CLIENT_CERT="+string(hostCert.pem))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the handshake line: %v (stderr: %s)", err, stderr.String())
	}
	parts := strings.Split(strings.TrimSpace(line), "|")
	if len(parts) != 6 || parts[0] != "1" || parts[1] != "1" || parts[2] != "unix" || parts[4] != "grpc" {
		t.Fatalf("handshake line %q, want 1|1|unix|PATH|grpc|CERT", line)
	}
	if fi, err := os.Stat(parts[3]); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("the address %q is not a unix socket (%v)", parts[3], err)
	}
	if strings.HasSuffix(parts[5], "=") {
		t.Errorf("certificate is padded base64; go-plugin reads raw (unpadded) standard base64")
	}
	der, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil {
		t.Fatalf("certificate is not raw standard base64: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("certificate does not parse: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("certificate does not verify for localhost and usage %v: %v", usage, err)
		}
	}

	// A TLS client without the host's certificate is turned away; with it,
	// the handshake completes.
	dial := func(certs []tls.Certificate) error {
		conn, err := tls.Dial("unix", parts[3], &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: certs, NextProtos: []string{"h2"}})
		if err != nil {
			return err
		}
		defer conn.Close()
		// TLS 1.3 reports a refused client certificate on the first read.
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")); err != nil {
			return err
		}
		_, err = conn.Read(make([]byte, 1))
		return err
	}
	if err := dial(nil); err == nil {
		t.Errorf("the plugin accepted a TLS client without a certificate")
	}
	if err := dial([]tls.Certificate{hostCert.tls}); err != nil {
		t.Errorf("the plugin refused the host's certificate: %v", err)
	}
}

type testCert struct {
	pem []byte
	tls tls.Certificate
}

// selfSigned makes a certificate like the one go-plugin's host sends.
func selfSigned(t *testing.T) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	pair, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return testCert{pem: certPEM, tls: pair}
}
