// Package store reads and writes the core's typed resources (runs,
// pipelines, trigger records, ...) as documents of the database plugin.
// Each resource is one JSON document under its kind, namespace and name;
// its revision guards every update, so two writers never lose each
// other's changes silently.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

// Store reaches the database plugin through DB at every call, so that a
// plugin restarted in between is used as it is now.
type Store struct {
	DB func(ctx context.Context) (database.Database, error)
	// Check, if set, is given every document before it is written; an
	// error refuses the write (a size limit, for one).
	Check func(m *resource.Meta, data []byte) error
}

// KeyOf is a resource's key in the database.
func KeyOf(m *resource.Meta) database.Key {
	return database.Key{Kind: m.Kind, Namespace: m.Namespace, Name: m.Name}
}

func fill(m *resource.Meta, r *database.Resource) {
	m.Revision, m.CreatedAt, m.UpdatedAt = r.Revision, r.CreatedAt, r.UpdatedAt
}

// Encode is obj's document, checked.
func (s *Store) Encode(obj resource.Object) (*database.Resource, error) {
	m := obj.ObjectMeta()
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s/%s: %w", m.Kind, m.Namespace, m.Name, err)
	}
	if s.Check != nil {
		if err := s.Check(m, data); err != nil {
			return nil, err
		}
	}
	return &database.Resource{Key: KeyOf(m), Revision: m.Revision, Labels: maps.Clone(m.Labels), Data: data}, nil
}

// Create writes a new resource; it fails with sdk.ErrAlreadyExists when
// one has its key.
func (s *Store) Create(ctx context.Context, obj resource.Object) error {
	db, err := s.DB(ctx)
	if err != nil {
		return err
	}
	doc, err := s.Encode(obj)
	if err != nil {
		return err
	}
	doc.Revision = 0
	r, err := db.Create(ctx, doc)
	if err != nil {
		return err
	}
	fill(obj.ObjectMeta(), r)
	return nil
}

// Get reads a resource into obj.
func (s *Store) Get(ctx context.Context, kind, ns, name string, obj resource.Object) error {
	db, err := s.DB(ctx)
	if err != nil {
		return err
	}
	r, err := db.Get(ctx, database.Key{Kind: kind, Namespace: ns, Name: name})
	if err != nil {
		return err
	}
	return Decode(r, obj)
}

// Decode reads a stored document into obj, with its key and revision.
func Decode(r *database.Resource, obj resource.Object) error {
	if err := json.Unmarshal(r.Data, obj); err != nil {
		return fmt.Errorf("decode %s %s/%s: %w", r.Key.Kind, r.Key.Namespace, r.Key.Name, err)
	}
	m := obj.ObjectMeta()
	m.Kind, m.Namespace, m.Name = r.Key.Kind, r.Key.Namespace, r.Key.Name
	fill(m, r)
	return nil
}

// Update writes obj if its stored revision is still obj's; otherwise it
// fails with sdk.ErrConflict.
func (s *Store) Update(ctx context.Context, obj resource.Object) error {
	db, err := s.DB(ctx)
	if err != nil {
		return err
	}
	doc, err := s.Encode(obj)
	if err != nil {
		return err
	}
	r, err := db.Update(ctx, doc)
	if err != nil {
		return err
	}
	fill(obj.ObjectMeta(), r)
	return nil
}

// Delete removes a resource.
func (s *Store) Delete(ctx context.Context, kind, ns, name string) error {
	db, err := s.DB(ctx)
	if err != nil {
		return err
	}
	return db.Delete(ctx, &database.DeleteRequest{Key: database.Key{Kind: kind, Namespace: ns, Name: name}})
}

// Mutate reads a resource, applies fn and writes it back, retrying when
// another writer got there first (at most 50 times). fn may be called
// several times, each time with the resource as it is then.
func Mutate[T any, P interface {
	*T
	resource.Object
}](ctx context.Context, s *Store, kind, ns, name string, fn func(P) error) (P, error) {
	for attempt := 0; ; attempt++ {
		obj := P(new(T))
		if err := s.Get(ctx, kind, ns, name, obj); err != nil {
			return nil, err
		}
		if err := fn(obj); err != nil {
			return nil, err
		}
		err := s.Update(ctx, obj)
		if err == nil {
			return obj, nil
		}
		if !errors.Is(err, sdk.ErrConflict) || attempt >= 50 {
			return nil, err
		}
	}
}

// List returns one page of a kind in a namespace ("" for every one),
// with the resources whose labels hold every label of the selector.
func List[T any, P interface {
	*T
	resource.Object
}](ctx context.Context, s *Store, kind, ns string, labels map[string]string, size int, token string) ([]T, string, error) {
	db, err := s.DB(ctx)
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
		if err := Decode(&resp.Items[i], obj); err != nil {
			return nil, "", err
		}
		out = append(out, *obj)
	}
	return out, resp.NextPageToken, nil
}
