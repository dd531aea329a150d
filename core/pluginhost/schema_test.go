package pluginhost_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/palvella/palvella/core/pluginhost"
	"github.com/palvella/palvella/core/schema"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

var schemaPlugin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "pluginhost-schema")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "schemaplugin")
	if out, err := exec.Command("go", "build", "-o", path, "./testdata/schemaplugin").CombinedOutput(); err != nil {
		return "", errors.New("build schemaplugin: " + err.Error() + "\n" + string(out))
	}
	return path, nil
})

func addSchemaPlugin(t *testing.T, m *pluginhost.Manager, name string, config map[string]any) *pluginhost.Plugin {
	t.Helper()
	path, err := schemaPlugin()
	if err != nil {
		t.Fatal(err)
	}
	sum, err := pluginhost.SHA256File(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.Add(pluginhost.Spec{Name: name, Source: pluginhost.SourcePath, Path: path, SHA256: sum, Config: config})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A configuration that does not match the plugin's schema is refused by
// the core, naming the plugin and the field, and never reaches the plugin.
func TestConfigCheckedAgainstSchemaBeforeConfigure(t *testing.T) {
	m := newManager(t)
	marker := filepath.Join(t.TempDir(), "configured")
	p := addSchemaPlugin(t, m, "database-foo", map[string]any{"path": 42, "level": 0, "colour": "red", "marker": marker})
	err := p.Start(context.Background())
	if err == nil {
		t.Fatal("a plugin with a configuration its schema refuses started")
	}
	for _, want := range []string{
		"plugin database-foo: configuration: ",
		"path: got number, want string",
		"level: must be at least 1",
		"colour: unknown field",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	var ce *pluginhost.ConfigError
	if !errors.As(err, &ce) || !errors.Is(err, pluginhost.ErrConfig) || !errors.Is(err, sdk.ErrInvalidArgument) {
		t.Errorf("error %v is not a ConfigError matching ErrConfig and ErrInvalidArgument", err)
	}
	if _, statErr := os.Stat(marker); statErr == nil {
		t.Error("the plugin's Configure ran with a configuration its schema refuses")
	}
	if st := p.Status(); st.State != pluginhost.StateFailed || !strings.Contains(st.LastError, "path: got number, want string") {
		t.Errorf("status = %s %q, want failed with the problem", st.State, st.LastError)
	}

	missing := addSchemaPlugin(t, m, "database-bar", map[string]any{})
	if err := missing.Start(context.Background()); err == nil || !strings.Contains(err.Error(), `plugin database-bar: configuration: missing field "path"`) {
		t.Errorf("start without a required field: %v", err)
	}
}

// A valid configuration reaches the plugin, and the schemas of its types
// are there for the core, compiled once per launch.
func TestTypeSchemasOfALaunch(t *testing.T) {
	m := newManager(t)
	marker := filepath.Join(t.TempDir(), "configured")
	p := addSchemaPlugin(t, m, "action-shouty", map[string]any{"path": "/tmp/x", "level": 2, "marker": marker})
	ctx := context.Background()
	s, err := p.TypeSchema(ctx, sdk.CategoryAction, "shout")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the plugin was not configured: %v", err)
	}
	if s == nil {
		t.Fatal("no schema for type shout")
	}
	again, err := p.TypeSchema(ctx, sdk.CategoryAction, "shout")
	if err != nil || again != s {
		t.Errorf("a second look compiled the schema again (%p, %p, %v)", s, again, err)
	}
	// The Palvella annotations are kept; the check ignores them.
	if b, _ := s.Property("text")[sdk.SchemaScript].(bool); !b {
		t.Errorf("annotation lost: %v", s.Doc())
	}
	probs := s.Check(map[string]any{"text": "hi", "times": "3", "extra": true}, schema.Options{})
	got := []string{}
	for _, pr := range probs {
		got = append(got, pr.String())
	}
	want := []string{"extra: unknown field", "times: got string, want integer"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s, err := p.TypeSchema(ctx, sdk.CategoryAction, "whisper"); err != nil || s != nil {
		t.Errorf("a type the plugin does not provide: %v, %v", s, err)
	}
}
