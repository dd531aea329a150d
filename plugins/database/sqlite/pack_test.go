package sqlite

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/palvella/palvella/plugin-sdk/database"
)

// A document is stored compressed, in the resource and in the change
// history, and reads back exactly as written.
func TestDocumentsAreStoredCompressed(t *testing.T) {
	st, _ := testStore(t)
	ctx := context.Background()
	doc := []byte(`{"jobs":[` + strings.Repeat(`{"name":"build","status":"success","actions":[{"name":"compile","status":"success"}]},`, 40) + `{}]}`)
	key := database.Key{Kind: "Run", Namespace: "default", Name: "r-1"}
	if _, err := st.create(ctx, &database.Resource{Key: key, Data: doc}); err != nil {
		t.Fatal(err)
	}
	var stored, change []byte
	if err := st.db.QueryRowContext(ctx, `SELECT data FROM resources WHERE name = 'r-1'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if err := st.db.QueryRowContext(ctx, `SELECT data FROM changes WHERE name = 'r-1'`).Scan(&change); err != nil {
		t.Fatal(err)
	}
	if len(stored) > len(doc)/4 || len(change) > len(doc)/4 {
		t.Fatalf("a %d-byte document takes %d bytes, and %d in the history", len(doc), len(stored), len(change))
	}
	got, err := st.get(ctx, key)
	if err != nil || !bytes.Equal(got.Data, doc) {
		t.Fatalf("get = %q, %v", got.Data, err)
	}
	evs, err := st.changesAfter(ctx, &database.WatchRequest{Kind: "Run"}, 0, 10)
	if err != nil || len(evs) != 1 || !bytes.Equal(evs[0].Resource.Data, doc) {
		t.Fatalf("history = %v, %v", evs, err)
	}
}

// A database written before documents were compressed reads as it was.
func TestUncompressedDocumentsStillRead(t *testing.T) {
	st, _ := testStore(t)
	ctx := context.Background()
	key := database.Key{Kind: "Run", Namespace: "default", Name: "old"}
	if _, err := st.create(ctx, &database.Resource{Key: key, Data: []byte(`{"a":1}`)}); err != nil {
		t.Fatal(err)
	}
	raw := []byte(`{"written":"before compression","pad":"` + strings.Repeat("x", 500) + `"}`)
	if _, err := st.db.ExecContext(ctx, `UPDATE resources SET data = ? WHERE name = 'old'`, raw); err != nil {
		t.Fatal(err)
	}
	got, err := st.get(ctx, key)
	if err != nil || !bytes.Equal(got.Data, raw) {
		t.Fatalf("get = %q, %v", got.Data, err)
	}
	list, err := st.list(ctx, &database.ListRequest{Kind: "Run"})
	if err != nil || len(list.Items) != 1 || !bytes.Equal(list.Items[0].Data, raw) {
		t.Fatalf("list = %+v, %v", list, err)
	}
}

func FuzzUnpack(f *testing.F) {
	f.Add(pack([]byte(strings.Repeat(`{"k":"v"}`, 50))))
	f.Add([]byte(`{"k":"v"}`))
	f.Add(append(append([]byte{}, packMagic...), 1, 2, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := unpack(b)
		if err == nil && !bytes.HasPrefix(b, packMagic) && !bytes.Equal(out, b) {
			t.Fatal("a value without the marker changed")
		}
		if p := pack(b); !bytes.Equal(mustUnpack(t, p), b) && len(b) > 0 {
			t.Fatal("pack does not round-trip")
		}
	})
}

func mustUnpack(t *testing.T, b []byte) []byte {
	out, err := unpack(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
