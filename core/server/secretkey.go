package server

// The key credentials are encrypted under: given, or generated on loopback.

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// SecretKeyEnv holds the credential key (base64 of 32 bytes) when it is
// not in a file.
const SecretKeyEnv = "PALVELLA_SECRET_KEY"

// SecretKeyFileEnv names the credential key's file when --secret-key-file
// does not.
const SecretKeyFileEnv = "PALVELLA_SECRET_KEY_FILE"

// SecretKeyFile is the key file a loopback server generates under its
// home when it is given no key.
const SecretKeyFile = "secret.key"

// credentialKey returns the settings that give credential-builtin its key
// (nil when its configuration has one already), and a line to tell the
// person starting the server, if any. A server on an address other than
// loopback must be given a key; a loopback one generates one under home on
// first start.
func credentialKey(cfg Config, loopback bool, listen string) (map[string]any, string, error) {
	if cfg.SecretKeyPlugin == "" {
		return nil, "", nil
	}
	for _, spec := range cfg.Plugins {
		if spec.Name != cfg.SecretKeyPlugin {
			continue
		}
		if _, ok := spec.Config["key"]; ok {
			return nil, "", nil
		}
		if _, ok := spec.Config["key_file"]; ok {
			return nil, "", nil
		}
	}
	if v := os.Getenv(SecretKeyEnv); v != "" {
		// Read once: no process the server starts inherits it.
		_ = os.Unsetenv(SecretKeyEnv)
		return map[string]any{"key": v}, "", nil
	}
	if cfg.SecretKeyFile == "" {
		cfg.SecretKeyFile = os.Getenv(SecretKeyFileEnv)
	}
	if cfg.SecretKeyFile != "" {
		if _, err := os.Stat(cfg.SecretKeyFile); err != nil {
			return nil, "", fmt.Errorf("the credential key file: %w", err)
		}
		return map[string]any{"key_file": cfg.SecretKeyFile}, "", nil
	}
	if !loopback {
		return nil, "", fmt.Errorf("a server listening on %s needs the key its credentials are encrypted under, and none was given.\n"+
			"Make one with `palvella credential keygen /etc/palvella/secret.key` (or `head -c 32 /dev/urandom | base64`), keep a copy somewhere safe,\n"+
			"and start the server with --secret-key-file /etc/palvella/secret.key or with %s set to the key", listen, SecretKeyEnv)
	}
	path := filepath.Join(cfg.Home, SecretKeyFile)
	if _, err := os.Stat(path); err == nil {
		return map[string]any{"key_file": path}, "", nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("the credential key file: %w", err)
	}
	if err := WriteKeyFile(path); err != nil {
		return nil, "", err
	}
	return map[string]any{"key_file": path}, fmt.Sprintf("Generated the key that encrypts credentials: %s (mode 0600). Back it up: credentials cannot be read without it.", path), nil
}

// WriteKeyFile writes a new random credential key (base64 of 32 bytes) to
// path, readable by its owner only. It refuses to replace a file.
func WriteKeyFile(path string) error {
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return fmt.Errorf("generate a credential key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write the credential key: %w", err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(buf) + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("write the credential key to %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write the credential key to %s: %w", path, err)
	}
	return nil
}
