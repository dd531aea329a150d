package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

// DefaultHistory is how long the change history is kept for Watch when the
// configuration does not say.
const DefaultHistory = 7 * 24 * time.Hour

// DefaultHistoryChanges is how many changes the history keeps at most
// when the configuration does not say. A change holds the document as it
// was written, so the history's size is bounded by this times the size of
// a document (a job's is about a kilobyte), whatever the age limit.
const DefaultHistoryChanges = 10000

// compactEvery is how often the history is compacted by age.
const compactEvery = 10 * time.Minute

// compactAfter is how many commits may pass before the history is
// compacted by count; between two compactions it holds at most this many
// more changes than its limit.
const compactAfter = 500

// compact removes the changes committed before before, and records the
// last revision removed. It returns how many changes it removed.
func (s *store) compact(ctx context.Context, before time.Time) (int64, error) {
	return s.compactUpTo(ctx, func(tx *sql.Tx) (upTo sql.NullInt64, err error) {
		err = tx.QueryRowContext(ctx, `SELECT MAX(revision) FROM changes WHERE updated_at < ?`, toNanos(before)).Scan(&upTo)
		return upTo, err
	})
}

// compactCount removes the oldest changes past the newest keep, and
// records the last revision removed. It returns how many it removed.
func (s *store) compactCount(ctx context.Context, keep int) (int64, error) {
	return s.compactUpTo(ctx, func(tx *sql.Tx) (upTo sql.NullInt64, err error) {
		err = tx.QueryRowContext(ctx, `SELECT revision FROM changes ORDER BY revision DESC LIMIT 1 OFFSET ?`, keep).Scan(&upTo)
		if errors.Is(err, sql.ErrNoRows) {
			return upTo, nil // fewer changes than keep
		}
		return upTo, err
	})
}

// compactUpTo removes the changes up to the revision find returns (none
// when it returns no revision) and records it as compacted, in one
// transaction. It returns how many changes it removed.
func (s *store) compactUpTo(ctx context.Context, find func(*sql.Tx) (sql.NullInt64, error)) (int64, error) {
	var removed int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		upTo, err := find(tx)
		if err != nil {
			return fmt.Errorf("find old changes: %w", err)
		}
		if !upTo.Valid {
			return nil
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM changes WHERE revision <= ?`, upTo.Int64)
		if err != nil {
			return fmt.Errorf("remove old changes: %w", err)
		}
		if removed, err = res.RowsAffected(); err != nil {
			return fmt.Errorf("remove old changes: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE compaction SET revision = MAX(revision, ?) WHERE id = 1`, upTo.Int64); err != nil {
			return fmt.Errorf("record compaction: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("compact the change history: %w", err)
	}
	return removed, nil
}

// compactedRevision is the last revision whose change was removed.
func (s *store) compactedRevision(ctx context.Context) (int64, error) {
	var rev int64
	if err := s.db.QueryRowContext(ctx, `SELECT revision FROM compaction WHERE id = 1`).Scan(&rev); err != nil {
		return 0, fmt.Errorf("read the compacted revision: %w", err)
	}
	return rev, nil
}

// checkNotCompacted fails when changes after rev may have been removed.
func (s *store) checkNotCompacted(ctx context.Context, rev int64) error {
	compacted, err := s.compactedRevision(ctx)
	if err != nil {
		return err
	}
	if rev < compacted {
		return sdk.Errorf(sdk.ErrFailedPrecondition, "afterRevision",
			"the history up to revision %d was compacted; list again and watch after the list's revision", compacted)
	}
	return nil
}

// keepHistory compacts the history older than keep every compactEvery,
// and past its newest max changes every compactAfter commits, until the
// store is closed.
func (s *store) keepHistory(keep time.Duration, max int) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ticker := time.NewTicker(compactEvery)
		defer ticker.Stop()
		commits := 0
		// A failure is retried later; the history only grows meanwhile.
		_, _ = s.compact(context.Background(), s.now().Add(-keep))
		_, _ = s.compactCount(context.Background(), max)
		for {
			changed := s.changes()
			select {
			case <-s.done:
				return
			case <-ticker.C:
				_, _ = s.compact(context.Background(), s.now().Add(-keep))
			case <-changed:
				if commits++; commits >= compactAfter {
					commits = 0
					_, _ = s.compactCount(context.Background(), max)
				}
			}
		}
	}()
}
