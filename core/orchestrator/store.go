package orchestrator

import (
	"context"

	"github.com/palvella/palvella/core/resource"
	rstore "github.com/palvella/palvella/core/store"
	"github.com/palvella/palvella/plugin-sdk/database"
)

// store is the core's typed store (core/store), under the names this
// package has always called it by; documents are checked against the
// size limit (limits.go) before they are written.
type store struct{ *rstore.Store }

func newStore(db func(ctx context.Context) (database.Database, error)) *store {
	return &store{&rstore.Store{DB: db, Check: checkDocument}}
}

func keyOf(m *resource.Meta) database.Key { return rstore.KeyOf(m) }

func (s *store) create(ctx context.Context, obj resource.Object) error { return s.Create(ctx, obj) }

func (s *store) get(ctx context.Context, kind, ns, name string, obj resource.Object) error {
	return s.Get(ctx, kind, ns, name, obj)
}

func decode(r *database.Resource, obj resource.Object) error { return rstore.Decode(r, obj) }

// update writes obj if its stored revision is still obj's; otherwise it
// fails with sdk.ErrConflict.
func (s *store) update(ctx context.Context, obj resource.Object) error { return s.Update(ctx, obj) }

func (s *store) delete(ctx context.Context, kind, ns, name string) error {
	return s.Delete(ctx, kind, ns, name)
}

// mutate reads a resource, applies fn and writes it back, retrying when
// another writer got there first. fn may be called several times.
func mutate[T any, P interface {
	*T
	resource.Object
}](ctx context.Context, s *store, kind, ns, name string, fn func(P) error) (P, error) {
	return rstore.Mutate[T, P](ctx, s.Store, kind, ns, name, fn)
}

// list returns one page of a kind.
func list[T any, P interface {
	*T
	resource.Object
}](ctx context.Context, s *store, kind, ns string, labels map[string]string, size int, token string) ([]T, string, error) {
	return rstore.List[T, P](ctx, s.Store, kind, ns, labels, size, token)
}
