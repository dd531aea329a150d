package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

// store reads and writes typed resources through the database plugin. Each
// resource is one document; its revision guards every update.
type store struct {
	db func(ctx context.Context) (database.Database, error)
}

func keyOf(m *resource.Meta) database.Key {
	return database.Key{Kind: m.Kind, Namespace: m.Namespace, Name: m.Name}
}

func fill(m *resource.Meta, r *database.Resource) {
	m.Revision, m.CreatedAt, m.UpdatedAt = r.Revision, r.CreatedAt, r.UpdatedAt
}

func (s *store) create(ctx context.Context, obj resource.Object) error {
	db, err := s.db(ctx)
	if err != nil {
		return err
	}
	m := obj.ObjectMeta()
	data, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encode %s %s/%s: %w", m.Kind, m.Namespace, m.Name, err)
	}
	if err := checkDocument(m, data); err != nil {
		return err
	}
	r, err := db.Create(ctx, &database.Resource{Key: keyOf(m), Labels: m.Labels, Data: data})
	if err != nil {
		return err
	}
	fill(m, r)
	return nil
}

func (s *store) get(ctx context.Context, kind, ns, name string, obj resource.Object) error {
	db, err := s.db(ctx)
	if err != nil {
		return err
	}
	r, err := db.Get(ctx, database.Key{Kind: kind, Namespace: ns, Name: name})
	if err != nil {
		return err
	}
	return decode(r, obj)
}

func decode(r *database.Resource, obj resource.Object) error {
	if err := json.Unmarshal(r.Data, obj); err != nil {
		return fmt.Errorf("decode %s %s/%s: %w", r.Key.Kind, r.Key.Namespace, r.Key.Name, err)
	}
	m := obj.ObjectMeta()
	m.Kind, m.Namespace, m.Name = r.Key.Kind, r.Key.Namespace, r.Key.Name
	fill(m, r)
	return nil
}

// update writes obj if its stored revision is still obj's; otherwise it
// fails with sdk.ErrConflict.
func (s *store) update(ctx context.Context, obj resource.Object) error {
	db, err := s.db(ctx)
	if err != nil {
		return err
	}
	m := obj.ObjectMeta()
	data, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encode %s %s/%s: %w", m.Kind, m.Namespace, m.Name, err)
	}
	if err := checkDocument(m, data); err != nil {
		return err
	}
	r, err := db.Update(ctx, &database.Resource{Key: keyOf(m), Revision: m.Revision, Labels: m.Labels, Data: data})
	if err != nil {
		return err
	}
	fill(m, r)
	return nil
}

func (s *store) delete(ctx context.Context, kind, ns, name string) error {
	db, err := s.db(ctx)
	if err != nil {
		return err
	}
	return db.Delete(ctx, &database.DeleteRequest{Key: database.Key{Kind: kind, Namespace: ns, Name: name}})
}

// mutate reads a resource, applies fn and writes it back, retrying when
// another writer got there first. fn may be called several times.
func mutate[T any, P interface {
	*T
	resource.Object
}](ctx context.Context, s *store, kind, ns, name string, fn func(P) error) (P, error) {
	for attempt := 0; ; attempt++ {
		obj := P(new(T))
		if err := s.get(ctx, kind, ns, name, obj); err != nil {
			return nil, err
		}
		if err := fn(obj); err != nil {
			return nil, err
		}
		err := s.update(ctx, obj)
		if err == nil {
			return obj, nil
		}
		if !errors.Is(err, sdk.ErrConflict) || attempt >= 50 {
			return nil, err
		}
	}
}

// list returns one page of a kind.
func list[T any, P interface {
	*T
	resource.Object
}](ctx context.Context, s *store, kind, ns string, labels map[string]string, size int, token string) ([]T, string, error) {
	db, err := s.db(ctx)
	if err != nil {
		return nil, "", err
	}
	resp, err := db.List(ctx, &database.ListRequest{Kind: kind, Namespace: ns, LabelSelector: labels, PageSize: size, PageToken: token})
	if err != nil {
		return nil, "", err
	}
	out := make([]T, 0, len(resp.Items))
	for i := range resp.Items {
		obj := P(new(T))
		if err := decode(&resp.Items[i], obj); err != nil {
			return nil, "", err
		}
		out = append(out, *obj)
	}
	return out, resp.NextPageToken, nil
}
