package sdk

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strings"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
)

// The plugin side of go-plugin's AutoMTLS, with a P-256 key.
//
// When the host sends its certificate in PLUGIN_CLIENT_CERT, go-plugin's
// Serve makes the plugin's certificate with a P-521 key and sends it back
// in the sixth field of its handshake line. The first use of P-521 in a
// process builds the curve's precomputed table, which costs more than
// everything else a plugin does before its handshake (13-17 ms on a 2-core
// VM, against 0.2 ms for a P-256 key; the host then verifies a P-521
// signature at every launch, 3 ms, against 0.1 ms). So the SDK does the
// plugin's side itself: the same certificate shape and TLS settings as
// go-plugin's, a P-256 key, handed to go-plugin as its TLSProvider, and
// the certificate written into the handshake line's sixth field, which
// go-plugin leaves empty when the TLS configuration is not its own. The
// line is go-plugin's documented wire protocol, so the host side, and
// plugins in other languages, are unchanged. See
// docs/design/plugin-launch.md.

// autoMTLS sets sc up to serve with a P-256 certificate trusted by, and
// trusting only, the host certificate in clientCertPEM. It replaces
// os.Stdout until go-plugin has written its handshake line. On error
// nothing is changed and go-plugin does its own AutoMTLS.
func autoMTLS(sc *goplugin.ServeConfig, clientCertPEM string) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(clientCertPEM)) {
		return errors.New("PLUGIN_CLIENT_CERT holds no certificate")
	}
	cert, err := pluginCertificate()
	if err != nil {
		return err
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
		// For connections the plugin dials back to the host (the broker).
		RootCAs:    pool,
		ServerName: "localhost",
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("handshake pipe: %w", err)
	}
	sc.TLSProvider = func() (*tls.Config, error) { return cfg, nil }
	go forwardHandshake(r, os.Stdout, base64.RawStdEncoding.EncodeToString(cert.Certificate[0]))
	os.Stdout = w
	return nil
}

// forwardHandshake copies what go-plugin writes to out, with cert in the
// sixth field of the handshake line (CORE|APP|NETWORK|ADDR|PROTOCOL|CERT,
// then optional fields), and goes on copying anything written after it.
func forwardHandshake(in io.Reader, out io.Writer, cert string) {
	br := bufio.NewReader(in)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			fields := strings.Split(strings.TrimSuffix(line, "\n"), "|")
			done := len(fields) >= 6 && fields[5] == ""
			if done {
				fields[5] = cert
				line = strings.Join(fields, "|") + "\n"
			}
			if _, err := io.WriteString(out, line); err != nil {
				return
			}
			if done {
				break
			}
		}
		if err != nil {
			return
		}
	}
	_, _ = io.Copy(out, br) // nothing is expected; stdout is go-plugin's stream now
}

// pluginCertificate makes a self-signed certificate as go-plugin's
// AutoMTLS does (localhost, client and server use, a CA of its own), with
// a P-256 key.
func pluginCertificate() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate plugin key: %w", err)
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"Palvella plugin"}},
		DNSNames:              []string{"localhost"},
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SerialNumber:          sn,
		NotBefore:             time.Now().Add(-30 * time.Second),
		// The key lives and dies with the process; an expiry would only
		// make a plugin that runs long refuse its host.
		NotAfter: time.Now().Add(20 * 365 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create plugin certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
