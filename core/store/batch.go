package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

// Batch collects writes of resources and queue items to apply in one call
// of the database plugin (database.Batcher): all of them or none. A change
// that spans several documents and the queue, such as a run's creation,
// then costs one round trip and one transaction instead of one per write.
//
// Writes of the same resource are merged: a resource created and then
// updated in a batch is created once with its last content. Revisions are
// known only after Commit, which fills them into the objects given (the
// last one given for each resource).
type Batch struct {
	s     *Store
	ops   []database.Op
	objs  []resource.Object
	byKey map[database.Key]int
}

// OpError is the failure of one write of a batch; none was kept.
type OpError struct {
	// Key of the resource the write was about; zero for a queue item.
	Key database.Key
	Err error
}

func (e *OpError) Error() string {
	if e.Key == (database.Key{}) {
		return e.Err.Error()
	}
	return fmt.Sprintf("%s %s/%s: %v", e.Key.Kind, e.Key.Namespace, e.Key.Name, e.Err)
}

// Unwrap returns the write's error, so that errors.Is sees its sentinel.
func (e *OpError) Unwrap() error { return e.Err }

// Batch starts a batch of writes.
func (s *Store) Batch() *Batch {
	return &Batch{s: s, byKey: map[database.Key]int{}}
}

// Len is the number of writes the batch holds.
func (b *Batch) Len() int { return len(b.ops) }

// Create adds the creation of obj, or replaces the content of a creation
// of the same resource already in the batch.
func (b *Batch) Create(obj resource.Object) error {
	doc, err := b.s.Encode(obj)
	if err != nil {
		return err
	}
	doc.Revision = 0
	if i, ok := b.byKey[doc.Key]; ok && b.ops[i].Create != nil {
		b.ops[i].Create, b.objs[i] = doc, obj
		return nil
	}
	b.add(database.Op{Create: doc}, obj, doc.Key)
	return nil
}

// Update adds an update of obj guarded by its revision. A resource the
// batch creates or updates already is written once, with this content.
func (b *Batch) Update(obj resource.Object) error {
	doc, err := b.s.Encode(obj)
	if err != nil {
		return err
	}
	if i, ok := b.byKey[doc.Key]; ok {
		switch {
		case b.ops[i].Create != nil:
			doc.Revision = 0
			b.ops[i].Create, b.objs[i] = doc, obj
			return nil
		case b.ops[i].Update != nil:
			doc.Revision = b.ops[i].Update.Revision
			b.ops[i].Update, b.objs[i] = doc, obj
			return nil
		}
	}
	b.add(database.Op{Update: doc}, obj, doc.Key)
	return nil
}

// Enqueue adds a queue item.
func (b *Batch) Enqueue(req *database.EnqueueRequest) {
	b.ops = append(b.ops, database.Op{Enqueue: req})
	b.objs = append(b.objs, nil)
}

// Ack adds the ack of a leased queue item. When it fails (the lease is no
// longer req's), Commit's *OpError names no key.
func (b *Batch) Ack(req *database.AckRequest) {
	b.ops = append(b.ops, database.Op{Ack: req})
	b.objs = append(b.objs, nil)
}

func (b *Batch) add(op database.Op, obj resource.Object, key database.Key) {
	b.byKey[key] = len(b.ops)
	b.ops = append(b.ops, op)
	b.objs = append(b.objs, obj)
}

// Commit applies the batch in one call and fills the stored revisions and
// times into its objects. A failed write fails the whole batch with an
// *OpError naming it, and nothing is kept. A database plugin that applies
// no batches fails it with sdk.ErrUnimplemented, having written nothing:
// the caller makes its writes another way.
func (b *Batch) Commit(ctx context.Context) error {
	if len(b.ops) == 0 {
		return nil
	}
	db, err := b.s.DB(ctx)
	if err != nil {
		return err
	}
	bt, ok := db.(database.Batcher)
	if !ok {
		return sdk.Errorf(sdk.ErrUnimplemented, "", "the database plugin applies no batches")
	}
	results, err := bt.Batch(ctx, b.ops)
	var be *database.BatchError
	if errors.As(err, &be) && be.Index >= 0 && be.Index < len(b.ops) {
		var key database.Key
		if obj := b.objs[be.Index]; obj != nil {
			key = KeyOf(obj.ObjectMeta())
		}
		return &OpError{Key: key, Err: be.Err}
	}
	if err != nil {
		return err
	}
	for i, obj := range b.objs {
		if obj != nil && results[i].Resource != nil {
			fill(obj.ObjectMeta(), results[i].Resource)
		}
	}
	return nil
}
