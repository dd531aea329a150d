package builtin

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/credential"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
)

var ctx = context.Background()

func randomKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// configure applies cfg and returns the diagnostics.
func configure(t *testing.T, p *Plugin, cfg map[string]any) []sdk.Diagnostic {
	t.Helper()
	resp, err := p.Configure(ctx, &sdk.ConfigureRequest{Config: cfg})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return resp.Diagnostics
}

func configured(t *testing.T, cfg map[string]any) *Plugin {
	t.Helper()
	p := New()
	if diags := configure(t, p, cfg); sdk.HasErrors(diags) {
		t.Fatalf("Configure diagnostics: %+v", diags)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestConformance(t *testing.T) {
	sdktest.RunBoth(t, func(t *testing.T) credential.Credential {
		return configured(t, map[string]any{"path": filepath.Join(t.TempDir(), "creds.db"), "key": randomKey(t)})
	}, credential.Service, sdktest.CredentialSuite)
}

func put(t *testing.T, p *Plugin, name, value string) {
	t.Helper()
	if _, err := p.Put(ctx, &credential.PutRequest{Name: name, Type: "Text", Data: map[string][]byte{"value": []byte(value)}}); err != nil {
		t.Fatalf("Put(%s): %v", name, err)
	}
}

// readDir returns the bytes of the files in dir (database, WAL...), but
// not of key files.
func readDir(t *testing.T, dir string) []byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".key") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

func TestValuesAreNotInTheDatabaseFiles(t *testing.T) {
	dir := t.TempDir()
	p := configured(t, map[string]any{"path": filepath.Join(dir, "creds.db"), "key": randomKey(t)})
	secret := "hunter2-correct-horse-battery-staple"
	put(t, p, "findable-name", secret)
	check := func(when string) {
		all := readDir(t, dir)
		if !bytes.Contains(all, []byte("findable-name")) {
			t.Fatalf("%s: the database files do not hold the record; the search would prove nothing", when)
		}
		if bytes.Contains(all, []byte(secret)) || bytes.Contains(all, []byte(base64.StdEncoding.EncodeToString([]byte(secret)))) {
			t.Fatalf("%s: the database files contain the secret value", when)
		}
	}
	check("while open") // the record may still be in the WAL
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	check("after closing") // the WAL is checkpointed into the database
}

func TestAWrongKeyIsRefusedClearly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds.db")
	right, wrong := randomKey(t), randomKey(t)
	p := configured(t, map[string]any{"path": path, "key": right})
	put(t, p, "db-password", "s3cr3t-value")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	q := New()
	diags := configure(t, q, map[string]any{"path": path, "key": wrong})
	if !sdk.HasErrors(diags) || diags[0].Field != "config.key" {
		t.Fatalf("a wrong key: diagnostics %+v, want an error about config.key", diags)
	}
	for _, d := range diags {
		if text := d.Summary + d.Detail; strings.Contains(text, wrong) || strings.Contains(text, right) || strings.Contains(text, "s3cr3t-value") {
			t.Fatalf("the diagnostic shows a key or a value: %s", text)
		}
	}
	if _, err := q.Get(ctx, "db-password"); !errors.Is(err, sdk.ErrFailedPrecondition) {
		t.Fatalf("Get after a refused configuration: %v, want the plugin to be unconfigured", err)
	}
	again := configured(t, map[string]any{"path": path, "key": right})
	got, err := again.Get(ctx, "db-password")
	if err != nil || string(got.Data["value"]) != "s3cr3t-value" {
		t.Fatalf("with the right key Get = %v, %v", got, err)
	}
}

// TestSwappedRecordsDoNotOpen swaps the sealed values of two rows behind
// the plugin's back: the name is bound to the ciphertext, so neither opens.
func TestSwappedRecordsDoNotOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds.db")
	p := configured(t, map[string]any{"path": path, "key": randomKey(t)})
	put(t, p, "harmless", "public-ish")
	put(t, p, "prod-db", "prod-secret-value")

	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	type sealedRow struct{ nonce, sealed []byte }
	rows := map[string]sealedRow{}
	for _, name := range []string{"harmless", "prod-db"} {
		var r sealedRow
		if err := db.QueryRow(`SELECT nonce, sealed FROM credentials WHERE name = ?`, name).Scan(&r.nonce, &r.sealed); err != nil {
			t.Fatal(err)
		}
		rows[name] = r
	}
	for name, from := range map[string]string{"harmless": "prod-db", "prod-db": "harmless"} {
		if _, err := db.Exec(`UPDATE credentials SET nonce = ?, sealed = ? WHERE name = ?`, rows[from].nonce, rows[from].sealed, name); err != nil {
			t.Fatalf("swap the records: %v", err)
		}
	}
	for _, name := range []string{"harmless", "prod-db"} {
		_, err := p.Get(ctx, name)
		if !errors.Is(err, sdk.ErrFailedPrecondition) {
			t.Fatalf("Get(%s) after swapping = %v, want sdk.ErrFailedPrecondition", name, err)
		}
		if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "public-ish") {
			t.Fatalf("the error shows a value: %v", err)
		}
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	key := randomKey(t)
	keyFile := filepath.Join(dir, "master.key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "creds.db")
	p := configured(t, map[string]any{"path": path, "key_file": keyFile})
	put(t, p, "x", "from-key-file")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	q := configured(t, map[string]any{"path": path, "key": key})
	if got, err := q.Get(ctx, "x"); err != nil || string(got.Data["value"]) != "from-key-file" {
		t.Fatalf("the key from the file and the same key inline disagree: %v, %v", got, err)
	}
}

func TestEmptyConfigCreatesAPrivateKeyFile(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	p := configured(t, map[string]any{})
	put(t, p, "x", "v")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(DefaultPath() + ".key")
	if err != nil {
		t.Fatalf("no key file next to the default database: %v", err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", info.Mode().Perm())
	}
	q := configured(t, map[string]any{})
	if got, err := q.Get(ctx, "x"); err != nil || string(got.Data["value"]) != "v" {
		t.Fatalf("a second start with the default key file: %v, %v", got, err)
	}
}

func TestBadConfigIsDiagnosedAndKeepsThePrevious(t *testing.T) {
	dir := t.TempDir()
	p := configured(t, map[string]any{"path": filepath.Join(dir, "creds.db"), "key": randomKey(t)})
	put(t, p, "kept", "v")
	short := base64.StdEncoding.EncodeToString([]byte("sixteen-byte-key"))
	for _, tc := range []struct {
		name  string
		cfg   map[string]any
		field string
	}{
		{"key not base64", map[string]any{"key": "not base64 at all!"}, "config.key"},
		{"key too short", map[string]any{"key": short}, "config.key"},
		{"key and key_file", map[string]any{"key": randomKey(t), "key_file": "/x"}, "config.key_file"},
		{"missing key_file", map[string]any{"key_file": filepath.Join(dir, "absent.key")}, "config.key_file"},
		{"unknown setting", map[string]any{"keyfile": "x"}, "config.keyfile"},
		{"path not a string", map[string]any{"path": true}, "config.path"},
	} {
		diags := configure(t, p, tc.cfg)
		if !sdk.HasErrors(diags) || diags[0].Field != tc.field {
			t.Errorf("%s: diagnostics %+v, want an error about %s", tc.name, diags, tc.field)
		}
		for _, d := range diags {
			if strings.Contains(d.Summary+d.Detail, short) {
				t.Errorf("%s: a diagnostic repeats the key", tc.name)
			}
		}
	}
	if got, err := p.Get(ctx, "kept"); err != nil || string(got.Data["value"]) != "v" {
		t.Fatalf("rejected configurations lost the database: %v, %v", got, err)
	}
}

func TestPutKeepsCreationTime(t *testing.T) {
	p := configured(t, map[string]any{"path": filepath.Join(t.TempDir(), "creds.db"), "key": randomKey(t)})
	first, err := p.Put(ctx, &credential.PutRequest{Name: "c", Data: map[string][]byte{"value": []byte("1")}})
	if err != nil {
		t.Fatal(err)
	}
	second, err := p.Put(ctx, &credential.PutRequest{Name: "c", Data: map[string][]byte{"value": []byte("2")}})
	if err != nil {
		t.Fatal(err)
	}
	if !second.CreatedAt.Equal(first.CreatedAt) {
		t.Fatalf("replacing a credential changed its creation time from %v to %v", first.CreatedAt, second.CreatedAt)
	}
}
