package sdktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/credential"
)

// CredentialSuite is the conformance suite of credential plugins. Each
// subtest gets a fresh plugin from newPlugin, configured and empty.
func CredentialSuite(t *testing.T, newPlugin Factory[credential.Credential]) {
	ctx := context.Background()

	t.Run("describe", func(t *testing.T) {
		checkManifest(t, newPlugin(t), sdk.CategoryCredential)
	})

	t.Run("put then get returns the same values", func(t *testing.T) {
		p := newPlugin(t)
		data := map[string][]byte{"value": []byte("s3cr3t"), "user": []byte("ci"), "binary": {0, 1, 2, 255}}
		meta, err := p.Put(ctx, &credential.PutRequest{Name: "ci-key", Type: "Text", Labels: map[string]string{"team": "a"}, Data: data})
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		if meta.Name != "ci-key" || meta.Type != "Text" {
			t.Fatalf("Put returned meta %+v, want name ci-key and type Text", meta)
		}
		got, err := p.Get(ctx, "ci-key")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if len(got.Data) != len(data) {
			t.Fatalf("Get returned %d values, want %d", len(got.Data), len(data))
		}
		for k, v := range data {
			if !bytes.Equal(got.Data[k], v) {
				t.Errorf("value %q changed in the round trip", k)
			}
		}
		if got.Meta.Labels["team"] != "a" {
			t.Errorf("labels lost: %v", got.Meta.Labels)
		}
	})

	t.Run("put replaces", func(t *testing.T) {
		p := newPlugin(t)
		mustPut(t, p, "token", "one")
		mustPut(t, p, "token", "two")
		got, err := p.Get(ctx, "token")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if string(got.Data["value"]) != "two" {
			t.Fatalf("after two puts Get returned %q, want the second value", got.Data["value"])
		}
		items, err := p.List(ctx, "")
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(items) != 1 {
			t.Fatalf("List after replacing one credential returned %d items, want 1", len(items))
		}
	})

	t.Run("list returns sorted metadata filtered by prefix", func(t *testing.T) {
		p := newPlugin(t)
		for _, n := range []string{"ci-b", "prod-db", "ci-a"} {
			mustPut(t, p, n, "v-"+n)
		}
		items, err := p.List(ctx, "ci-")
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		var names []string
		for _, m := range items {
			names = append(names, m.Name)
		}
		if fmt.Sprint(names) != "[ci-a ci-b]" {
			t.Fatalf("List(ci-) = %v, want [ci-a ci-b]", names)
		}
	})

	t.Run("get of a missing credential is not found", func(t *testing.T) {
		_, err := newPlugin(t).Get(ctx, "missing")
		if !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("Get(missing) error = %v, want sdk.ErrNotFound", err)
		}
	})

	t.Run("delete removes, and a second delete is not found", func(t *testing.T) {
		p := newPlugin(t)
		mustPut(t, p, "gone", "x")
		if err := p.Delete(ctx, "gone"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := p.Get(ctx, "gone"); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("Get after Delete error = %v, want sdk.ErrNotFound", err)
		}
		if err := p.Delete(ctx, "gone"); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("second Delete error = %v, want sdk.ErrNotFound", err)
		}
	})

	t.Run("bad input names the field", func(t *testing.T) {
		p := newPlugin(t)
		for _, tc := range []struct {
			name  string
			req   credential.PutRequest
			field string
		}{
			{"empty name", credential.PutRequest{Name: "", Data: map[string][]byte{"value": []byte("x")}}, "name"},
			{"name with a slash", credential.PutRequest{Name: "a/b", Data: map[string][]byte{"value": []byte("x")}}, "name"},
			{"no data", credential.PutRequest{Name: "empty"}, "data"},
		} {
			_, err := p.Put(ctx, &tc.req)
			assertInvalid(t, tc.name, err, tc.field)
		}
		items, err := p.List(ctx, "")
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(items) != 0 {
			t.Fatalf("rejected puts left %d credentials behind", len(items))
		}
	})

	t.Run("values never appear in errors", func(t *testing.T) {
		p := newPlugin(t)
		secret := "do-not-print-7f3a"
		mustPut(t, p, "hidden", secret)
		_, err := p.Put(ctx, &credential.PutRequest{Name: "bad/name", Data: map[string][]byte{"value": []byte(secret)}})
		if err != nil && bytes.Contains([]byte(err.Error()), []byte(secret)) {
			t.Fatalf("error message contains the secret value: %v", err)
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		p := newPlugin(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := p.Put(cctx, &credential.PutRequest{Name: "late", Data: map[string][]byte{"value": []byte("x")}})
		assertCancelled(t, err)
		if _, err := p.Get(ctx, "late"); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("a cancelled Put stored the credential (Get error = %v)", err)
		}
	})
}

func mustPut(t *testing.T, p credential.Credential, name, value string) {
	t.Helper()
	if _, err := p.Put(context.Background(), &credential.PutRequest{Name: name, Type: "Text", Data: map[string][]byte{"value": []byte(value)}}); err != nil {
		t.Fatalf("Put(%s): %v", name, err)
	}
}
