package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

// The queue's times are the database's (statement_timestamp()): every
// server on the database compares leases against the same clock, so a
// server whose clock runs ahead cannot take a lease another still holds.

const itemColumns = `id, queue, payload, attempts, lease_token, lease_expires_at, enqueued_at`

func scanItem(row pgx.Row) (*database.QueueItem, error) {
	var (
		it      database.QueueItem
		token   *string
		expires *time.Time
	)
	if err := row.Scan(&it.ID, &it.Queue, &it.Payload, &it.Attempts, &token, &expires, &it.EnqueuedAt); err != nil {
		return nil, err
	}
	if token != nil {
		it.LeaseToken = *token
	}
	if expires != nil {
		it.LeaseExpiresAt = expires.UTC()
	}
	it.EnqueuedAt = it.EnqueuedAt.UTC()
	return &it, nil
}

// micros is d in whole microseconds, PostgreSQL's resolution.
func micros(d time.Duration) int64 { return d.Microseconds() }

func (s *store) enqueue(ctx context.Context, req *database.EnqueueRequest) (*database.QueueItem, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	id := req.ID
	if id == "" {
		id = randomID()
	}
	var out *database.QueueItem
	err := s.retry(ctx, false, func() error {
		// An item acked between the refused insert and the read is gone:
		// insert again.
		for range 3 {
			var enqueued time.Time
			err := s.pool.QueryRow(ctx,
				`INSERT INTO palvella_queue (id, queue, payload, attempts, available_at, enqueued_at)
				VALUES ($1, $2, $3, 0, statement_timestamp() + $4 * interval '1 microsecond', statement_timestamp())
				ON CONFLICT (id) DO NOTHING RETURNING enqueued_at`,
				id, req.Queue, nonNil(req.Payload), micros(req.Delay)).Scan(&enqueued)
			if err == nil {
				out = &database.QueueItem{ID: id, Queue: req.Queue, Payload: req.Payload, EnqueuedAt: enqueued.UTC()}
				return nil
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			existing, err := scanItem(s.pool.QueryRow(ctx, `SELECT `+itemColumns+` FROM palvella_queue WHERE id = $1`, id))
			if errors.Is(err, pgx.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			if existing.Queue != req.Queue {
				return sdk.Errorf(sdk.ErrAlreadyExists, "id", "item %q is already queued in %q", id, existing.Queue)
			}
			existing.LeaseToken = "" // belongs to whoever holds it
			out = existing
			return nil
		}
		return fmt.Errorf("item %q was enqueued and removed again three times during this call", id)
	})
	if err != nil {
		return nil, s.fail(ctx, fmt.Sprintf("enqueue into %q", req.Queue), err)
	}
	return out, nil
}

// lease hands out the first available item with FOR UPDATE SKIP LOCKED:
// leasers on every server skip the rows others are leasing at that moment
// instead of queueing behind them, and the row lock makes sure no two
// take the same item. Each lease takes the next value of palvella_fence,
// its fencing number, which starts the lease token ("<fence>.<random>"):
// a later lease of any item always has a greater number.
func (s *store) lease(ctx context.Context, req *database.LeaseRequest) (*database.QueueItem, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	var out *database.QueueItem
	err := s.retry(ctx, false, func() error {
		it, err := scanItem(s.pool.QueryRow(ctx, `
			WITH next AS (
				SELECT id FROM palvella_queue
				WHERE queue = $1 AND available_at <= statement_timestamp()
				ORDER BY available_at, enqueued_at, id
				LIMIT 1
				FOR UPDATE SKIP LOCKED
			), lease AS (
				SELECT next.id, nextval('palvella_fence') AS fence,
					statement_timestamp() + $4 * interval '1 microsecond' AS expires
				FROM next
			)
			UPDATE palvella_queue q SET attempts = q.attempts + 1, fence = lease.fence,
				lease_token = lease.fence::text || '.' || $2, lease_holder = $3,
				lease_expires_at = lease.expires, available_at = lease.expires
			FROM lease WHERE q.id = lease.id
			RETURNING q.id, q.queue, q.payload, q.attempts, q.lease_token, q.lease_expires_at, q.enqueued_at`,
			req.Queue, randomID(), req.Holder, micros(req.TTL)))
		if errors.Is(err, pgx.ErrNoRows) {
			out = nil
			return nil
		}
		out = it
		return err
	})
	if err != nil {
		return nil, s.fail(ctx, fmt.Sprintf("lease from %q", req.Queue), err)
	}
	return out, nil
}

// lost says why a renew, ack or nack matched no item holding its token:
// the item does not exist, or its current lease is another (or none). A
// token whose lease expired stays valid until someone else leases the
// item: nobody else did the work in between.
func (s *store) lost(ctx context.Context, id string) error {
	var exists bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM palvella_queue WHERE id = $1)`, id).Scan(&exists)
	if err != nil {
		return err
	}
	if !exists {
		return sdk.Errorf(sdk.ErrNotFound, "id", "no queued item %q", id)
	}
	return sdk.Errorf(sdk.ErrConflict, "leaseToken", "is not the current lease of item %q; the lease expired or was released", id)
}

func (s *store) renew(ctx context.Context, req *database.RenewRequest) (*database.QueueItem, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	var out *database.QueueItem
	err := s.retry(ctx, false, func() error {
		it, err := scanItem(s.pool.QueryRow(ctx, `
			WITH lease AS (SELECT statement_timestamp() + $3 * interval '1 microsecond' AS expires)
			UPDATE palvella_queue SET lease_expires_at = lease.expires, available_at = lease.expires
			FROM lease WHERE id = $1 AND lease_token = $2
			RETURNING `+itemColumns, req.ID, req.LeaseToken, micros(req.TTL)))
		if errors.Is(err, pgx.ErrNoRows) {
			return s.lost(ctx, req.ID)
		}
		out = it
		return err
	})
	if err != nil {
		return nil, s.fail(ctx, fmt.Sprintf("renew lease of %q", req.ID), err)
	}
	return out, nil
}

func (s *store) ack(ctx context.Context, req *database.AckRequest) error {
	if err := req.Validate(); err != nil {
		return err
	}
	err := s.retry(ctx, false, func() error {
		ct, err := s.pool.Exec(ctx, `DELETE FROM palvella_queue WHERE id = $1 AND lease_token = $2`, req.ID, req.LeaseToken)
		if err != nil {
			return err
		}
		if ct.RowsAffected() == 0 {
			return s.lost(ctx, req.ID)
		}
		return nil
	})
	if err != nil {
		return s.fail(ctx, fmt.Sprintf("ack %q", req.ID), err)
	}
	return nil
}

func (s *store) nack(ctx context.Context, req *database.NackRequest) error {
	if err := req.Validate(); err != nil {
		return err
	}
	err := s.retry(ctx, false, func() error {
		ct, err := s.pool.Exec(ctx, `
			UPDATE palvella_queue SET lease_token = NULL, lease_holder = NULL, lease_expires_at = NULL,
				available_at = statement_timestamp() + $3 * interval '1 microsecond'
			WHERE id = $1 AND lease_token = $2`, req.ID, req.LeaseToken, micros(req.RetryAfter))
		if err != nil {
			return err
		}
		if ct.RowsAffected() == 0 {
			return s.lost(ctx, req.ID)
		}
		return nil
	})
	if err != nil {
		return s.fail(ctx, fmt.Sprintf("nack %q", req.ID), err)
	}
	return nil
}
