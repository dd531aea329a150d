package pluginhost

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// hostIdentity is the client certificate the core presents to its plugins.
//
// go-plugin's AutoMTLS generates a P-521 key and certificate on both sides
// at every launch. The plugin side is go-plugin's (or the plugin's own)
// business, but the core's side can be made once per process: the core
// generates one P-256 certificate at start, hands it to each plugin in
// PLUGIN_CLIENT_CERT exactly as AutoMTLS does, and trusts the certificate
// the plugin sends back in its handshake line. The wire protocol is
// unchanged, every connection is still mutually authenticated, and a
// launch saves a key generation. See docs/design/plugin-launch.md.
type hostIdentity struct {
	cert    tls.Certificate
	certPEM []byte
}

func newHostIdentity() (*hostIdentity, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate host key: %w", err)
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"Palvella"}},
		DNSNames:              []string{"localhost"},
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SerialNumber:          sn,
		NotBefore:             time.Now().Add(-30 * time.Second),
		// The key lives and dies with the process. With an expiry, a
		// server running longer would see every plugin launch refuse it.
		NotAfter: time.Now().Add(20 * 365 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create host certificate: %w", err)
	}
	var certPEM bytes.Buffer
	if err := pem.Encode(&certPEM, &pem.Block{Type: "CERTIFICATE", Bytes: der}); err != nil {
		return nil, err
	}
	return &hostIdentity{
		cert:    tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		certPEM: certPEM.Bytes(),
	}, nil
}

// tlsConfig returns a fresh client TLS configuration for one launch;
// go-plugin adds the plugin's certificate to its RootCAs when it reads the
// handshake line.
func (h *hostIdentity) tlsConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{h.cert},
		MinVersion:   tls.VersionTLS12,
		ServerName:   "localhost",
		// RootCAs is set by go-plugin from the plugin's handshake. Until
		// then it is an empty pool, so nothing else is ever trusted.
		RootCAs: x509.NewCertPool(),
	}
}
