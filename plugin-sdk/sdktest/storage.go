package sdktest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/storage"
)

// StorageSuite is the conformance suite of storage plugins. Each subtest
// gets a fresh plugin from newPlugin, configured and empty.
func StorageSuite(t *testing.T, newPlugin Factory[storage.Storage]) {
	ctx := context.Background()
	run := func(id string) storage.Scope {
		return storage.Scope{Kind: storage.ScopeRun, Namespace: "team-a", Pipeline: "build", Run: id}
	}
	ref := func(s storage.Scope, key string) storage.ObjectRef { return storage.ObjectRef{Scope: s, Key: key} }

	t.Run("describe", func(t *testing.T) {
		checkManifest(t, newPlugin(t), sdk.CategoryStorage)
	})

	t.Run("a 5 MiB blob round trips with its size and sha256", func(t *testing.T) {
		st := newPlugin(t)
		blob := make([]byte, 5<<20)
		if _, err := rand.Read(blob); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(blob)
		want := hex.EncodeToString(sum[:])
		r := ref(run("r1"), "artifacts/app.tar.gz")
		info, err := st.Put(ctx, r, bytes.NewReader(blob))
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		if info.Size != int64(len(blob)) || info.SHA256 != want || info.Ref != r {
			t.Fatalf("Put = %+v, want size %d, sha256 %s and ref %+v", info, len(blob), want, r)
		}
		got, ginfo := mustGet(t, st, r)
		if !bytes.Equal(got, blob) {
			t.Fatalf("Get returned %d bytes that differ from the %d put", len(got), len(blob))
		}
		if ginfo.Size != info.Size || ginfo.SHA256 != want {
			t.Fatalf("Get info = %+v, want size %d and sha256 %s", ginfo, info.Size, want)
		}
		sinfo, err := st.Stat(ctx, r)
		if err != nil {
			t.Fatalf("Stat: %v", err)
		}
		if sinfo.Size != info.Size || sinfo.SHA256 != want || sinfo.ModifiedAt.IsZero() {
			t.Fatalf("Stat = %+v, want size %d, sha256 %s and a modification time", sinfo, info.Size, want)
		}
	})

	t.Run("an empty object is an object", func(t *testing.T) {
		st := newPlugin(t)
		r := ref(run("r1"), "empty")
		info, err := st.Put(ctx, r, strings.NewReader(""))
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		empty := sha256.Sum256(nil)
		if info.Size != 0 || info.SHA256 != hex.EncodeToString(empty[:]) {
			t.Fatalf("Put of nothing = %+v", info)
		}
		if got, _ := mustGet(t, st, r); len(got) != 0 {
			t.Fatalf("Get of an empty object returned %d bytes", len(got))
		}
	})

	t.Run("put replaces", func(t *testing.T) {
		st := newPlugin(t)
		r := ref(run("r1"), "state.json")
		mustPutString(t, st, r, "one")
		mustPutString(t, st, r, "two")
		if got, _ := mustGet(t, st, r); string(got) != "two" {
			t.Fatalf("after two puts Get = %q, want two", got)
		}
	})

	t.Run("keys are confined to their scope", func(t *testing.T) {
		st := newPlugin(t)
		scopes := []storage.Scope{
			run("r1"),
			run("r2"),
			{Kind: storage.ScopeRun, Namespace: "team-b", Pipeline: "build", Run: "r1"},
			{Kind: storage.ScopePipeline, Namespace: "team-a", Pipeline: "build"},
			{Kind: storage.ScopeJob, Namespace: "team-a", Pipeline: "build", Run: "r1", Job: "test"},
			{Kind: storage.ScopeJob, Namespace: "team-a", Pipeline: "build", Run: "r1", Job: "lint"},
		}
		for i, s := range scopes {
			mustPutString(t, st, ref(s, "log.txt"), fmt.Sprintf("scope %d", i))
		}
		for i, s := range scopes {
			if got, _ := mustGet(t, st, ref(s, "log.txt")); string(got) != fmt.Sprintf("scope %d", i) {
				t.Errorf("scope %d (%+v) holds %q: the same key in two scopes must be two objects", i, s, got)
			}
			resp, err := st.List(ctx, &storage.ListRequest{Scope: s})
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if len(resp.Items) != 1 {
				t.Errorf("List of scope %d returned %d objects, want its one", i, len(resp.Items))
			}
		}
	})

	t.Run("bad keys and scopes name the field", func(t *testing.T) {
		st := newPlugin(t)
		for _, key := range []string{"../x", "/etc/passwd", "a/../../b", "", "a//b", "./a", "a/", "a/.", `a\b`, "a\x00b"} {
			_, err := st.Put(ctx, ref(run("r1"), key), strings.NewReader("x"))
			assertInvalid(t, fmt.Sprintf("Put with key %q", key), err, "key")
			_, err = st.Stat(ctx, ref(run("r1"), key))
			assertInvalid(t, fmt.Sprintf("Stat with key %q", key), err, "key")
			_, _, err = st.Get(ctx, ref(run("r1"), key))
			assertInvalid(t, fmt.Sprintf("Get with key %q", key), err, "key")
		}
		for _, tc := range []struct {
			scope storage.Scope
			field string
		}{
			{storage.Scope{Namespace: "a", Pipeline: "b"}, "scope.kind"},
			{storage.Scope{Kind: storage.ScopeRun, Namespace: "a", Pipeline: "b"}, "scope.run"},
			{storage.Scope{Kind: storage.ScopeRun, Namespace: "..", Pipeline: "b", Run: "r"}, "scope.namespace"},
			{storage.Scope{Kind: storage.ScopeRun, Namespace: "a", Pipeline: "x/y", Run: "r"}, "scope.pipeline"},
			{storage.Scope{Kind: storage.ScopeJob, Namespace: "a", Pipeline: "b", Run: "r"}, "scope.job"},
			{storage.Scope{Kind: storage.ScopePipeline, Namespace: "a", Pipeline: "b", Run: "r"}, "scope.run"},
		} {
			_, err := st.Put(ctx, ref(tc.scope, "k"), strings.NewReader("x"))
			assertInvalid(t, fmt.Sprintf("Put into scope %+v", tc.scope), err, tc.field)
		}
		resp, err := st.List(ctx, &storage.ListRequest{Scope: run("r1")})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(resp.Items) != 0 {
			t.Fatalf("rejected puts left %d objects behind", len(resp.Items))
		}
		_, err = st.List(ctx, &storage.ListRequest{Scope: run("r1"), Prefix: "../"})
		assertInvalid(t, "List with prefix ../", err, "prefix")
		_, err = st.Prune(ctx, storage.ScopeUnspecified, time.Now())
		assertInvalid(t, "Prune of an unspecified kind", err, "kind")
	})

	t.Run("a failed put leaves nothing visible", func(t *testing.T) {
		st := newPlugin(t)
		r := ref(run("r1"), "partial.bin")
		errBroken := errors.New("the source broke")
		_, err := st.Put(ctx, r, &failingReader{data: bytes.Repeat([]byte("x"), 300<<10), err: errBroken})
		if err == nil {
			t.Fatal("Put from a reader that fails succeeded")
		}
		if _, err := st.Stat(ctx, r); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("after a failed Put, Stat error = %v, want sdk.ErrNotFound", err)
		}
		resp, err := st.List(ctx, &storage.ListRequest{Scope: run("r1")})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(resp.Items) != 0 {
			t.Fatalf("a failed Put left %d objects visible", len(resp.Items))
		}

		// A failed replacement keeps the old contents.
		mustPutString(t, st, r, "complete")
		if _, err := st.Put(ctx, r, &failingReader{data: []byte("half"), err: errBroken}); err == nil {
			t.Fatal("Put from a reader that fails succeeded")
		}
		if got, _ := mustGet(t, st, r); string(got) != "complete" {
			t.Fatalf("after a failed replacement Get = %q, want the previous contents", got)
		}
	})

	t.Run("a cancelled put leaves nothing visible", func(t *testing.T) {
		st := newPlugin(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		r := ref(run("r1"), "cancelled-early")
		_, err := st.Put(cctx, r, strings.NewReader("x"))
		assertCancelled(t, err)
		if _, err := st.Stat(ctx, r); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("a Put cancelled before it began stored the object (Stat error = %v)", err)
		}

		mctx, mcancel := context.WithCancel(ctx)
		defer mcancel()
		r = ref(run("r1"), "cancelled-midway")
		// The reader cancels the call after the first 256 KiB, then goes on.
		src := &cancellingReader{data: bytes.Repeat([]byte("y"), 2<<20), after: 256 << 10, cancel: mcancel}
		if _, err := st.Put(mctx, r, src); err == nil {
			t.Fatal("a Put cancelled midway succeeded")
		}
		if _, err := st.Stat(ctx, r); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("a Put cancelled midway stored the object (Stat error = %v)", err)
		}
	})

	t.Run("missing objects are not found", func(t *testing.T) {
		st := newPlugin(t)
		r := ref(run("r1"), "nothing/here")
		if _, err := st.Stat(ctx, r); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Stat(missing) error = %v, want sdk.ErrNotFound", err)
		}
		if rc, _, err := st.Get(ctx, r); !errors.Is(err, sdk.ErrNotFound) {
			if rc != nil {
				rc.Close()
			}
			t.Errorf("Get(missing) error = %v, want sdk.ErrNotFound", err)
		}
		if err := st.Delete(ctx, r); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Delete(missing) error = %v, want sdk.ErrNotFound", err)
		}
		// "nothing" is a folder of an object, not an object.
		mustPutString(t, st, r, "x")
		if _, err := st.Stat(ctx, ref(run("r1"), "nothing")); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Stat of a key's parent error = %v, want sdk.ErrNotFound", err)
		}
	})

	t.Run("list pages through a prefix once each, sorted", func(t *testing.T) {
		st := newPlugin(t)
		s := run("r1")
		want := []string{}
		for i := range 25 {
			key := fmt.Sprintf("logs/step-%02d.log", i)
			if i%5 == 0 {
				key = fmt.Sprintf("logs/deep/er/step-%02d.log", i)
			}
			mustPutString(t, st, ref(s, key), key)
			want = append(want, key)
		}
		mustPutString(t, st, ref(s, "logs-not/x"), "x")
		mustPutString(t, st, ref(s, "report.html"), "x")
		mustPutString(t, st, ref(run("r2"), "logs/other-run.log"), "x")
		slices.Sort(want)

		var got []string
		var sizes []int
		token := ""
		for page := 0; ; page++ {
			if page > 10 {
				t.Fatalf("paging did not end after %d pages", page)
			}
			resp, err := st.List(ctx, &storage.ListRequest{Scope: s, Prefix: "logs/", PageSize: 10, PageToken: token})
			if err != nil {
				t.Fatalf("List page %d: %v", page, err)
			}
			sizes = append(sizes, len(resp.Items))
			for _, it := range resp.Items {
				got = append(got, it.Ref.Key)
				if it.Size != int64(len(it.Ref.Key)) || it.Ref.Scope != s {
					t.Errorf("List item %+v has the wrong size or scope", it)
				}
			}
			if resp.NextPageToken == "" {
				break
			}
			token = resp.NextPageToken
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("paging returned %v, want %v", got, want)
		}
		if fmt.Sprint(sizes) != "[10 10 5]" {
			t.Errorf("page sizes = %v, want [10 10 5]", sizes)
		}
		resp, err := st.List(ctx, &storage.ListRequest{Scope: s, Prefix: "logs/st"})
		if err != nil {
			t.Fatalf("List with a partial prefix: %v", err)
		}
		if len(resp.Items) != 20 {
			t.Errorf("List(logs/st) returned %d items, want 20", len(resp.Items))
		}
		resp, err = st.List(ctx, &storage.ListRequest{Scope: s})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(resp.Items) != 27 {
			t.Errorf("List without prefix returned %d items, want 27", len(resp.Items))
		}
		_, err = st.List(ctx, &storage.ListRequest{Scope: s, PageToken: "not a token we gave"})
		assertInvalid(t, "List with a forged page token", err, "pageToken")
		empty, err := st.List(ctx, &storage.ListRequest{Scope: run("never-written")})
		if err != nil || len(empty.Items) != 0 {
			t.Errorf("List of an unused scope = %+v, %v, want nothing", empty, err)
		}
	})

	t.Run("delete removes", func(t *testing.T) {
		st := newPlugin(t)
		r := ref(run("r1"), "a/b/c.txt")
		mustPutString(t, st, r, "x")
		keep := ref(run("r1"), "a/keep.txt")
		mustPutString(t, st, keep, "y")
		if err := st.Delete(ctx, r); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := st.Stat(ctx, r); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("Stat after Delete error = %v, want sdk.ErrNotFound", err)
		}
		if err := st.Delete(ctx, r); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("second Delete error = %v, want sdk.ErrNotFound", err)
		}
		resp, err := st.List(ctx, &storage.ListRequest{Scope: run("r1")})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(resp.Items) != 1 || resp.Items[0].Ref.Key != "a/keep.txt" {
			t.Fatalf("List after Delete = %+v, want only a/keep.txt", resp.Items)
		}
		// The key's folders were left empty; the key can be written again.
		mustPutString(t, st, r, "again")
	})

	t.Run("prune deletes old objects of one scope kind", func(t *testing.T) {
		st := newPlugin(t)
		start := time.Now()
		mustPutString(t, st, ref(run("r1"), "a"), "x")
		mustPutString(t, st, ref(run("r1"), "dir/b"), "x")
		mustPutString(t, st, ref(run("r2"), "c"), "x")
		pipe := ref(storage.Scope{Kind: storage.ScopePipeline, Namespace: "team-a", Pipeline: "build"}, "cache")
		job := ref(storage.Scope{Kind: storage.ScopeJob, Namespace: "team-a", Pipeline: "build", Run: "r1", Job: "test"}, "a")
		mustPutString(t, st, pipe, "x")
		mustPutString(t, st, job, "x")

		n, err := st.Prune(ctx, storage.ScopeRun, start.Add(-time.Hour))
		if err != nil || n != 0 {
			t.Fatalf("Prune of objects older than an hour before they were written = %d, %v, want 0", n, err)
		}
		n, err = st.Prune(ctx, storage.ScopeRun, time.Now().Add(time.Minute))
		if err != nil {
			t.Fatalf("Prune: %v", err)
		}
		if n != 3 {
			t.Fatalf("Prune of run scopes deleted %d objects, want 3", n)
		}
		if _, err := st.Stat(ctx, ref(run("r1"), "a")); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("a pruned object is still there (Stat error = %v)", err)
		}
		for _, r := range []storage.ObjectRef{pipe, job} {
			if _, err := st.Stat(ctx, r); err != nil {
				t.Fatalf("Prune of run scopes removed %+v: %v", r.Scope, err)
			}
		}
	})
}

// failingReader returns data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// cancellingReader calls cancel once after bytes have been read, and keeps
// returning data.
type cancellingReader struct {
	data   []byte
	after  int
	read   int
	cancel func()
}

func (r *cancellingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	r.read += n
	if r.read >= r.after && r.cancel != nil {
		r.cancel()
		r.cancel = nil
	}
	return n, nil
}

func mustPutString(t *testing.T, st storage.Storage, ref storage.ObjectRef, s string) {
	t.Helper()
	if _, err := st.Put(context.Background(), ref, strings.NewReader(s)); err != nil {
		t.Fatalf("Put(%s): %v", ref.Key, err)
	}
}

func mustGet(t *testing.T, st storage.Storage, ref storage.ObjectRef) ([]byte, *storage.ObjectInfo) {
	t.Helper()
	rc, info, err := st.Get(context.Background(), ref)
	if err != nil {
		t.Fatalf("Get(%s): %v", ref.Key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", ref.Key, err)
	}
	return b, info
}
