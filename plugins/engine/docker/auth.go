package docker

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os/exec"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/registry"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// dockerHubServer is the name the Docker CLI and credential helpers give
// Docker Hub.
const dockerHubServer = "https://index.docker.io/v1/"

// registryOf returns the registry an image is pulled from, as credential
// helpers name it.
func registryOf(image string) (string, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", sdk.Errorf(sdk.ErrInvalidArgument, "image", "%q is not an image reference: %v", image, err)
	}
	d := reference.Domain(named)
	if d == "docker.io" {
		return dockerHubServer, nil
	}
	return d, nil
}

// registryAuth returns the encoded credentials for pulling image, or ""
// for an anonymous pull. The order is the Docker CLI's: the registry's
// credHelpers entry, then username/password, then credsStore.
func registryAuth(ctx context.Context, l login, image string) (string, error) {
	server, err := registryOf(image)
	if err != nil {
		return "", err
	}
	var ac *registry.AuthConfig
	switch {
	case l.credHelpers[server] != "" || (server == dockerHubServer && l.credHelpers["docker.io"] != ""):
		h := l.credHelpers[server]
		if h == "" {
			h = l.credHelpers["docker.io"]
		}
		ac, err = helperGet(ctx, h, server)
	case l.username != "" && (l.server == "" || sameRegistry(l.server, server)):
		ac = &registry.AuthConfig{Username: l.username, Password: l.password, ServerAddress: server}
	case l.credsStore != "":
		ac, err = helperGet(ctx, l.credsStore, server)
	}
	if err != nil || ac == nil {
		return "", err
	}
	b, err := json.Marshal(ac)
	if err != nil {
		return "", err
	}
	return base64.URLEncoding.EncodeToString(b), nil
}

func sameRegistry(a, b string) bool {
	norm := func(s string) string {
		s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
		s = strings.TrimSuffix(s, "/")
		if s == "docker.io" || s == "index.docker.io/v1" || s == "registry-1.docker.io" {
			return "docker.io"
		}
		return s
	}
	return norm(a) == norm(b)
}

// helperGet asks the credential helper docker-credential-NAME for a
// registry's credentials, by the helpers' protocol: `get` with the server
// on stdin, JSON on stdout. A helper that has none gives no credentials.
// Nothing the helper prints is ever put in an error: it may hold a secret.
func helperGet(ctx context.Context, name, server string) (*registry.AuthConfig, error) {
	if strings.ContainsAny(name, "/\\") {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "login", "credential helper %q: a helper is named, not a path", name)
	}
	prog := "docker-credential-" + name
	if _, err := exec.LookPath(prog); err != nil {
		return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "login", "credential helper %s is not on the engine's PATH", prog)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, "get")
	cmd.Stdin = strings.NewReader(server)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		if strings.Contains(out.String()+errOut.String(), "credentials not found") {
			return nil, nil
		}
		return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "login", "credential helper %s failed for %s: %v", prog, server, err)
	}
	var cred struct {
		Username string `json:"Username"`
		Secret   string `json:"Secret"`
	}
	if err := json.Unmarshal(out.Bytes(), &cred); err != nil {
		return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "login", "credential helper %s gave an answer that is not its JSON for %s", prog, server)
	}
	if cred.Username == "<token>" {
		return &registry.AuthConfig{IdentityToken: cred.Secret, ServerAddress: server}, nil
	}
	return &registry.AuthConfig{Username: cred.Username, Password: cred.Secret, ServerAddress: server}, nil
}

// redact removes secrets from a message that came from elsewhere (the
// daemon, a registry).
func redact(msg string, l login) string {
	if l.password != "" {
		msg = strings.ReplaceAll(msg, l.password, "[redacted]")
	}
	return msg
}
