package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/palvella/palvella/core/client"
	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/core/server"
	"github.com/spf13/cobra"
)

// DefaultServer is where the CLI looks for a server when nothing says
// otherwise.
const DefaultServer = "http://127.0.0.1:7700"

// remote holds the flags of commands that talk to a server.
type remote struct {
	server, token, namespace, caCert string
}

// CACertEnv names a PEM file of certificate authorities the CLI trusts
// for https:// servers, besides the system's, when --ca-cert does not.
const CACertEnv = "PALVELLA_CA_CERT"

// remoteFlags adds --server, --token and -n/--namespace to cmd and its
// subcommands.
func remoteFlags(cmd *cobra.Command, r *remote) {
	cmd.PersistentFlags().StringVar(&r.server, "server", "", "URL of the Palvella server (env PALVELLA_SERVER, else cli.json, else "+DefaultServer+")")
	cmd.PersistentFlags().StringVar(&r.token, "token", "", "API token (env PALVELLA_TOKEN, else cli.json)")
	cmd.PersistentFlags().StringVarP(&r.namespace, "namespace", "n", "default", "namespace")
	cmd.PersistentFlags().StringVar(&r.caCert, "ca-cert", "", "PEM file of certificate authorities to trust for an https:// server, besides the system's (env "+CACertEnv+")")
}

// httpClient returns the HTTP client of the CLI: the default one, or one
// that also trusts the certificate authorities of caFile.
func httpClient(caFile string) (*http.Client, error) {
	if caFile == "" {
		return http.DefaultClient, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-cert: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca-cert: %s holds no PEM certificate", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}, nil
}

// client finds the server and the token: flags over environment over
// $PALVELLA_HOME/cli.json. The token of cli.json is only sent to the
// server cli.json names, so it never leaks to another server.
// remoteClient checks a command's -o value and then connects: the common
// start of every command that talks to a server.
func (app *App) remoteClient(r *remote, output string) (*client.Client, error) {
	if err := checkOutput(output); err != nil {
		return nil, err
	}
	return app.client(r)
}

func (app *App) client(r *remote) (*client.Client, error) {
	var cfg server.CLIConfig
	path := filepath.Join(app.Home, server.CLIConfigFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &cfg); err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	url := firstOf(r.server, os.Getenv("PALVELLA_SERVER"), cfg.Server, DefaultServer)
	token := firstOf(r.token, os.Getenv("PALVELLA_TOKEN"))
	if token == "" && cfg.Token != "" && strings.TrimRight(url, "/") == strings.TrimRight(firstOf(cfg.Server, DefaultServer), "/") {
		token = cfg.Token
	}
	hc, err := httpClient(firstOf(r.caCert, os.Getenv(CACertEnv)))
	if err != nil {
		return nil, err
	}
	return client.New(url, token, client.WithHTTPClient(hc))
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// remoteError says clearly when no server answered.
func remoteError(err error) error {
	var u *client.UnreachableError
	if errors.As(err, &u) {
		return fmt.Errorf("no Palvella server at %s: start one with `palvella server` (%w)", u.Server, u.Err)
	}
	return err
}

// duration formats how long something ran: milliseconds under a second,
// hundredths of a second under a minute, then seconds; "-" when it has not
// started, up to now while it runs.
func duration(start, end *time.Time) string {
	if start == nil {
		return "-"
	}
	to := time.Now()
	if end != nil {
		to = *end
	}
	d := to.Sub(*start)
	switch {
	case d < 0:
		return "0ms"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func statusOf(s resource.Status) string {
	if s == "" {
		return "-"
	}
	return string(s)
}
