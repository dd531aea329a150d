package sqlite

import (
	"context"
	"errors"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
)

// withoutBatch hides the plugin's Batch, as a database plugin that has none.
type withoutBatch struct{ database.Database }

// A client asking a plugin without Batch for one gets sdk.ErrUnimplemented,
// which tells the core to make the writes one by one.
func TestBatchOfAPluginWithoutItIsUnimplemented(t *testing.T) {
	db := sdktest.OverGRPC(t, database.Database(withoutBatch{newTestPlugin(t)}), database.Service)
	b, ok := db.(database.Batcher)
	if !ok {
		t.Fatal("the gRPC client has no Batch")
	}
	_, err := b.Batch(context.Background(), []database.Op{{Create: &database.Resource{Key: database.Key{Kind: "Run", Name: "a"}}}})
	if !errors.Is(err, sdk.ErrUnimplemented) {
		t.Fatalf("Batch of a plugin without it: error = %v, want sdk.ErrUnimplemented", err)
	}
	if _, err := db.Get(context.Background(), database.Key{Kind: "Run", Name: "a"}); !errors.Is(err, sdk.ErrNotFound) {
		t.Fatalf("the refused batch wrote (Get error = %v)", err)
	}
}
