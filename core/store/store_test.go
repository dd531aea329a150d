package store_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/palvella/palvella/core/pluginhost"
	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/core/store"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

// newStore is a Store on the real sqlite plugin, launched as a process.
func newStore(t *testing.T, check func(*resource.Meta, []byte) error) *store.Store {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "sqlite")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/sqlite").CombinedOutput(); err != nil {
		t.Fatalf("build the sqlite plugin: %v\n%s", err, out)
	}
	sum, err := pluginhost.SHA256File(bin)
	if err != nil {
		t.Fatal(err)
	}
	m, err := pluginhost.New(pluginhost.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Shutdown)
	p, err := m.Add(pluginhost.Spec{Name: "database-test", Path: bin, SHA256: sum, Config: map[string]any{"path": filepath.Join(dir, "db")}})
	if err != nil {
		t.Fatal(err)
	}
	return &store.Store{Check: check, DB: func(ctx context.Context) (database.Database, error) {
		return pluginhost.Client[database.Database](ctx, p, sdk.CategoryDatabase)
	}}
}

func record(name string, labels map[string]string) *resource.TriggerRecord {
	return &resource.TriggerRecord{Meta: resource.Meta{Kind: resource.KindTriggerRecord, Namespace: "default", Name: name, Labels: labels}}
}

func TestStoreAgainstSQLite(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, func(m *resource.Meta, data []byte) error {
		if m.Name == "too-big" {
			return fmt.Errorf("%s is too big (%d bytes)", m.Name, len(data))
		}
		return nil
	})
	r := record("a", map[string]string{"pipeline": "p"})
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.Revision == 0 || r.CreatedAt.IsZero() {
		t.Fatalf("create did not fill the revision and times: %+v", r.Meta)
	}
	if err := s.Create(ctx, record("a", nil)); !errors.Is(err, sdk.ErrAlreadyExists) {
		t.Fatalf("a second create of a: %v, want already exists", err)
	}
	if err := s.Create(ctx, record("too-big", nil)); err == nil {
		t.Fatal("Check did not refuse the write")
	}
	if err := s.Get(ctx, resource.KindTriggerRecord, "default", "too-big", record("", nil)); !errors.Is(err, sdk.ErrNotFound) {
		t.Fatalf("a refused write left a document: %v", err)
	}

	// An update with a stale revision is a conflict; Mutate retries it.
	stale := *r
	r.Trigger = "first"
	if err := s.Update(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, &stale); !errors.Is(err, sdk.ErrConflict) {
		t.Fatalf("update with a stale revision: %v, want a conflict", err)
	}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := store.Mutate(ctx, s, resource.KindTriggerRecord, "default", "a", func(r *resource.TriggerRecord) error {
				r.Trigger += fmt.Sprint(i % 10)
				return nil
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got := record("", nil)
	if err := s.Get(ctx, resource.KindTriggerRecord, "default", "a", got); err != nil {
		t.Fatal(err)
	}
	if len(got.Trigger) != len("first")+10 {
		t.Fatalf("10 concurrent mutations left %q: some were lost", got.Trigger)
	}

	// List pages through a kind with a label selector.
	for i := range 5 {
		if err := s.Create(ctx, record(fmt.Sprintf("b%d", i), map[string]string{"pipeline": "q"})); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	for token := ""; ; {
		page, next, err := store.List[resource.TriggerRecord](ctx, s, resource.KindTriggerRecord, "default", map[string]string{"pipeline": "q"}, 2, token)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			names = append(names, r.Name)
		}
		if next == "" {
			break
		}
		token = next
	}
	if len(names) != 5 {
		t.Fatalf("listed %v, want the 5 records of pipeline q", names)
	}
	if err := s.Delete(ctx, resource.KindTriggerRecord, "default", "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Get(ctx, resource.KindTriggerRecord, "default", "a", got); !errors.Is(err, sdk.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
}
