package sqlite

import (
	"context"
	"database/sql"

	"github.com/palvella/palvella/plugin-sdk/database"
)

// batch applies ops in one transaction: each as its own method would, all
// of them or none. Each write takes its own revision and is recorded in the
// history, so watchers see every change once the transaction commits.
func (s *store) batch(ctx context.Context, ops []database.Op) ([]database.OpResult, error) {
	if err := database.ValidateBatch(ops); err != nil {
		return nil, err
	}
	out := make([]database.OpResult, len(ops))
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for i, op := range ops {
			var err error
			switch {
			case op.Create != nil:
				out[i].Resource, err = s.createIn(ctx, tx, op.Create)
			case op.Update != nil:
				out[i].Resource, err = s.updateIn(ctx, tx, op.Update)
			case op.Delete != nil:
				err = s.deleteIn(ctx, tx, op.Delete)
			case op.Enqueue != nil:
				out[i].Item, err = s.enqueueIn(ctx, tx, op.Enqueue)
			case op.Ack != nil:
				if err = op.Ack.Validate(); err == nil {
					err = s.ackIn(ctx, tx, op.Ack)
				}
			}
			if err != nil {
				return &database.BatchError{Index: i, Err: err}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var kinds []string
	for _, op := range ops {
		switch {
		case op.Create != nil:
			kinds = append(kinds, op.Create.Key.Kind)
		case op.Update != nil:
			kinds = append(kinds, op.Update.Key.Kind)
		case op.Delete != nil:
			kinds = append(kinds, op.Delete.Key.Kind)
		}
	}
	s.notify(kinds...)
	return out, nil
}
