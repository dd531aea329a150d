package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultHistory is how long the change history is kept for Watch when the
// configuration does not say (as sqlite's).
const DefaultHistory = 7 * 24 * time.Hour

// DefaultHistoryChanges is how many changes the history keeps at most
// when the configuration does not say (as sqlite's).
const DefaultHistoryChanges = 10000

// compactEvery is how often the history is compacted by age.
const compactEvery = 10 * time.Minute

// compactAfter is how many notified changes may pass before the history is
// compacted by count. Every server on the database compacts; the work is
// idempotent.
const compactAfter = 500

// compact removes the changes older than keep by the database's clock.
func (s *store) compact(ctx context.Context, keep time.Duration) (int64, error) {
	return s.compactUpTo(ctx, func(tx pgx.Tx) (*int64, error) {
		var upTo *int64
		err := tx.QueryRow(ctx, `SELECT MAX(revision) FROM palvella_changes WHERE updated_at < statement_timestamp() - $1 * interval '1 microsecond'`,
			micros(keep)).Scan(&upTo)
		return upTo, err
	})
}

// compactCount removes the oldest changes past the newest keep.
func (s *store) compactCount(ctx context.Context, keep int) (int64, error) {
	return s.compactUpTo(ctx, func(tx pgx.Tx) (*int64, error) {
		var upTo int64
		err := tx.QueryRow(ctx, `SELECT revision FROM palvella_changes ORDER BY revision DESC LIMIT 1 OFFSET $1`, keep).Scan(&upTo)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, nil // fewer changes than keep
		}
		return &upTo, err
	})
}

// compactUpTo removes the changes up to the revision find returns (none
// when nil) and records it as compacted, in one transaction. It returns
// how many changes it removed.
func (s *store) compactUpTo(ctx context.Context, find func(pgx.Tx) (*int64, error)) (int64, error) {
	var removed int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		upTo, err := find(tx)
		if err != nil {
			return fmt.Errorf("find old changes: %w", err)
		}
		if upTo == nil {
			return nil
		}
		ct, err := tx.Exec(ctx, `DELETE FROM palvella_changes WHERE revision <= $1`, *upTo)
		if err != nil {
			return fmt.Errorf("remove old changes: %w", err)
		}
		removed = ct.RowsAffected()
		if _, err := tx.Exec(ctx, `UPDATE palvella_compaction SET revision = GREATEST(revision, $1) WHERE id = 1`, *upTo); err != nil {
			return fmt.Errorf("record compaction: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, s.fail(ctx, "compact the change history", err)
	}
	return removed, nil
}

// keepHistory compacts the history older than keep every compactEvery,
// and past its newest max changes every compactAfter changes, until the
// store is closed.
func (s *store) keepHistory(keep time.Duration, max int) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			<-s.done
			cancel()
		}()
		ticker := time.NewTicker(compactEvery)
		defer ticker.Stop()
		commits := 0
		// A failure is retried later; the history only grows meanwhile.
		_, _ = s.compact(ctx, keep)
		_, _ = s.compactCount(ctx, max)
		for {
			changed := s.changes()
			select {
			case <-s.done:
				return
			case <-ticker.C:
				_, _ = s.compact(ctx, keep)
			case <-changed:
				if commits++; commits >= compactAfter {
					commits = 0
					_, _ = s.compactCount(ctx, max)
				}
			}
		}
	}()
}
