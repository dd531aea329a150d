package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

func itoa(i int) string { return strconv.Itoa(i) }

func TestDeletingAResourceRemovesItsLabels(t *testing.T) {
	st, _ := testStore(t)
	ctx := context.Background()
	key := database.Key{Kind: "Run", Name: "r"}
	if _, err := st.create(ctx, &database.Resource{Key: key, Labels: map[string]string{"a": "1", "b": "2"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.delete(ctx, &database.DeleteRequest{Key: key}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := st.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM resource_labels`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d label rows outlived their resource", n)
	}
}

func TestARefusedCreateTakesNoRevision(t *testing.T) {
	st, _ := testStore(t)
	ctx := context.Background()
	key := database.Key{Kind: "Run", Name: "dup"}
	first, err := st.create(ctx, &database.Resource{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.create(ctx, &database.Resource{Key: key})
	if !errors.Is(err, sdk.ErrAlreadyExists) {
		t.Fatalf("duplicate create error = %v, want sdk.ErrAlreadyExists", err)
	}
	var typed *sdk.Error
	if !errors.As(err, &typed) || typed.Field != "key" {
		t.Fatalf("duplicate create error %v does not name the key", err)
	}
	next, err := st.create(ctx, &database.Resource{Key: database.Key{Kind: "Run", Name: "next"}})
	if err != nil {
		t.Fatal(err)
	}
	if next.Revision != first.Revision+1 {
		t.Fatalf("revision after a refused create = %d, want %d (no history entry for the refused write)", next.Revision, first.Revision+1)
	}
}

func TestPagingContinuesAfterTheLastItemIsDeleted(t *testing.T) {
	st, _ := testStore(t)
	ctx := context.Background()
	for i := range 6 {
		if _, err := st.create(ctx, &database.Resource{Key: database.Key{Kind: "Job", Name: "j" + itoa(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := st.list(ctx, &database.ListRequest{Kind: "Job", PageSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.delete(ctx, &database.DeleteRequest{Key: page.Items[2].Key}); err != nil {
		t.Fatal(err)
	}
	rest, err := st.list(ctx, &database.ListRequest{Kind: "Job", PageSize: 3, PageToken: page.NextPageToken})
	if err != nil {
		t.Fatalf("List with the token of a page whose last item was deleted: %v", err)
	}
	if got := names(rest.Items); len(got) != 3 || got[0] != "j3" || got[2] != "j5" || rest.NextPageToken != "" {
		t.Fatalf("second page = %v (next %q), want [j3 j4 j5] and no next page", got, rest.NextPageToken)
	}
}

func names(rs []database.Resource) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Key.Name)
	}
	return out
}

// Two stores on one file stand for two processes: the watcher sees the
// other's write by polling.
func TestWatchSeesWritesOfAnotherConnection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := openStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	b, err := openStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()

	got := make(chan database.Event, 1)
	errStop := errors.New("stop")
	done := make(chan error, 1)
	go func() {
		done <- a.watch(ctx, &database.WatchRequest{Kind: "Run"}, func(ev database.Event) error {
			got <- ev
			return errStop
		})
	}()
	if _, err := b.create(ctx, &database.Resource{Key: database.Key{Kind: "Run", Name: "from-b"}}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, errStop) {
		t.Fatalf("watch returned %v", err)
	}
	if ev := <-got; ev.Type != database.EventCreated || ev.Resource.Key.Name != "from-b" {
		t.Fatalf("watch saw %v %v, want the creation of from-b", ev.Type, ev.Resource.Key)
	}
}

func TestDeleteEventCarriesTheLastState(t *testing.T) {
	st, _ := testStore(t)
	ctx := context.Background()
	key := database.Key{Kind: "Run", Name: "r"}
	if _, err := st.create(ctx, &database.Resource{Key: key, Labels: map[string]string{"pipeline": "web"}, Data: []byte("last")}); err != nil {
		t.Fatal(err)
	}
	if err := st.delete(ctx, &database.DeleteRequest{Key: key}); err != nil {
		t.Fatal(err)
	}
	evs, err := st.changesAfter(ctx, &database.WatchRequest{Kind: "Run"}, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[1].Type != database.EventDeleted {
		t.Fatalf("history = %+v, want a creation and a deletion", evs)
	}
	if del := evs[1].Resource; string(del.Data) != "last" || del.Labels["pipeline"] != "web" || del.Revision <= evs[0].Resource.Revision {
		t.Fatalf("deletion event = %+v, want the last data and labels with a new revision", del)
	}
}
