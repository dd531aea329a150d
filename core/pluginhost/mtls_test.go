package pluginhost_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

func selfSigned(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"}, SerialNumber: big.NewInt(1),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// The SDK makes the plugin's side of the mutual TLS with a P-256 key (not
// go-plugin's P-521) and sends its certificate in the handshake line; the
// plugin accepts a connection from the host's certificate and no other.
func TestPluginServesMutualTLSWithAP256Certificate(t *testing.T) {
	host, hostPEM := selfSigned(t)
	cmd := exec.Command(testPlugin)
	cmd.Env = []string{sdk.MagicCookieKey + "=" + sdk.MagicCookieValue, "PLUGIN_PROTOCOL_VERSIONS=1",
		"PLUGIN_CLIENT_CERT=" + string(hostPEM), "TMPDIR=" + t.TempDir()}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("handshake line: %v", err)
	}
	fields := strings.Split(strings.TrimSpace(line), "|")
	if len(fields) < 6 || fields[2] != "unix" {
		t.Fatalf("handshake line %q: want CORE|APP|unix|ADDR|grpc|CERT", line)
	}
	der, err := base64.RawStdEncoding.DecodeString(fields[5])
	if err != nil {
		t.Fatalf("certificate field of %q: %v", line, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("plugin certificate key is %T %v, want ECDSA P-256", cert.PublicKey, cert.PublicKey)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)

	other, _ := selfSigned(t)
	for _, tc := range []struct {
		name   string
		certs  []tls.Certificate
		accept bool
	}{
		{"the host's certificate", []tls.Certificate{host}, true},
		{"no certificate", nil, false},
		{"another certificate", []tls.Certificate{other}, false},
	} {
		raw, err := net.Dial("unix", fields[3])
		if err != nil {
			t.Fatal(err)
		}
		conn := tls.Client(raw, &tls.Config{Certificates: tc.certs, RootCAs: roots, ServerName: "localhost", NextProtos: []string{"h2"}})
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		err = conn.Handshake()
		if err == nil {
			// TLS 1.3: the server's verdict on the client's certificate
			// arrives after the handshake; a gRPC server then sends its
			// HTTP/2 settings.
			_, err = conn.Read(make([]byte, 1))
		}
		conn.Close()
		if tc.accept && err != nil {
			t.Errorf("connection with %s: %v, want accepted", tc.name, err)
		}
		if !tc.accept && err == nil {
			t.Errorf("connection with %s was accepted", tc.name)
		}
	}
}
