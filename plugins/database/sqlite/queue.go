package sqlite

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

const itemColumns = `id, queue, payload, attempts, lease_token, lease_expires_at, enqueued_at`

type scanner interface{ Scan(dest ...any) error }

func scanItem(row scanner) (*database.QueueItem, error) {
	var (
		it       database.QueueItem
		token    sql.NullString
		expires  sql.NullInt64
		enqueued int64
	)
	if err := row.Scan(&it.ID, &it.Queue, &it.Payload, &it.Attempts, &token, &expires, &enqueued); err != nil {
		return nil, err
	}
	it.LeaseToken = token.String
	if expires.Valid {
		it.LeaseExpiresAt = fromNanos(expires.Int64)
	}
	it.EnqueuedAt = fromNanos(enqueued)
	return &it, nil
}

func (s *store) enqueue(ctx context.Context, req *database.EnqueueRequest) (*database.QueueItem, error) {
	var out *database.QueueItem
	err := s.tx(ctx, func(tx *sql.Tx) (err error) {
		out, err = s.enqueueIn(ctx, tx, req)
		return err
	})
	return out, err
}

// enqueueIn is enqueue within tx; the caller commits.
func (s *store) enqueueIn(ctx context.Context, tx *sql.Tx, req *database.EnqueueRequest) (*database.QueueItem, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	id := req.ID
	if id == "" {
		id = randomID()
	}
	now := s.now()
	var out *database.QueueItem
	err := func() error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO queue_items (id, queue, payload, attempts, available_at, enqueued_at) VALUES (?, ?, ?, 0, ?, ?)`,
			id, req.Queue, nonNil(req.Payload), toNanos(now.Add(req.Delay)), toNanos(now))
		if isUniqueViolation(err) {
			existing, err := scanItem(tx.QueryRowContext(ctx, `SELECT `+itemColumns+` FROM queue_items WHERE id = ?`, id))
			if err != nil {
				return fmt.Errorf("read queued item: %w", err)
			}
			if existing.Queue != req.Queue {
				return sdk.Errorf(sdk.ErrAlreadyExists, "id", "item %q is already queued in %q", id, existing.Queue)
			}
			existing.LeaseToken = "" // belongs to whoever holds it
			out = existing
			return nil
		}
		if err != nil {
			return fmt.Errorf("insert item: %w", err)
		}
		out = &database.QueueItem{ID: id, Queue: req.Queue, Payload: req.Payload, EnqueuedAt: now.UTC()}
		return nil
	}()
	if err != nil {
		return nil, fmt.Errorf("enqueue into %q: %w", req.Queue, err)
	}
	return out, nil
}

func (s *store) lease(ctx context.Context, req *database.LeaseRequest) (*database.QueueItem, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	now := s.now()
	var out *database.QueueItem
	err := s.tx(ctx, func(tx *sql.Tx) error {
		it, err := scanItem(tx.QueryRowContext(ctx,
			`SELECT `+itemColumns+` FROM queue_items WHERE queue = ? AND available_at <= ? ORDER BY available_at, enqueued_at, id LIMIT 1`,
			req.Queue, toNanos(now)))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("find an available item: %w", err)
		}
		it.Attempts++
		it.LeaseToken = randomID()
		it.LeaseExpiresAt = now.Add(req.TTL).UTC()
		exp := toNanos(it.LeaseExpiresAt)
		if _, err := tx.ExecContext(ctx,
			`UPDATE queue_items SET attempts = ?, lease_token = ?, lease_holder = ?, lease_expires_at = ?, available_at = ? WHERE id = ?`,
			it.Attempts, it.LeaseToken, req.Holder, exp, exp, it.ID); err != nil {
			return fmt.Errorf("lease item %q: %w", it.ID, err)
		}
		out = it
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lease from %q: %w", req.Queue, err)
	}
	return out, nil
}

// leased reads an item and checks that token is its current lease token.
// A token whose lease expired stays valid until someone else leases the
// item: nobody else did the work in between.
func leased(ctx context.Context, tx *sql.Tx, id, token string) (*database.QueueItem, error) {
	it, err := scanItem(tx.QueryRowContext(ctx, `SELECT `+itemColumns+` FROM queue_items WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "id", "no queued item %q", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read item: %w", err)
	}
	if it.LeaseToken == "" || subtle.ConstantTimeCompare([]byte(it.LeaseToken), []byte(token)) != 1 {
		return nil, sdk.Errorf(sdk.ErrConflict, "leaseToken", "is not the current lease of item %q; the lease expired or was released", id)
	}
	return it, nil
}

func (s *store) renew(ctx context.Context, req *database.RenewRequest) (*database.QueueItem, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	now := s.now()
	var out *database.QueueItem
	err := s.tx(ctx, func(tx *sql.Tx) error {
		it, err := leased(ctx, tx, req.ID, req.LeaseToken)
		if err != nil {
			return err
		}
		it.LeaseExpiresAt = now.Add(req.TTL).UTC()
		exp := toNanos(it.LeaseExpiresAt)
		if _, err := tx.ExecContext(ctx, `UPDATE queue_items SET lease_expires_at = ?, available_at = ? WHERE id = ?`, exp, exp, it.ID); err != nil {
			return fmt.Errorf("extend lease: %w", err)
		}
		out = it
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("renew lease of %q: %w", req.ID, err)
	}
	return out, nil
}

func (s *store) ack(ctx context.Context, req *database.AckRequest) error {
	if err := req.Validate(); err != nil {
		return err
	}
	err := s.tx(ctx, func(tx *sql.Tx) error { return s.ackIn(ctx, tx, req) })
	if err != nil {
		return fmt.Errorf("ack %q: %w", req.ID, err)
	}
	return nil
}

// ackIn is ack within tx; the caller commits.
func (s *store) ackIn(ctx context.Context, tx *sql.Tx, req *database.AckRequest) error {
	if _, err := leased(ctx, tx, req.ID, req.LeaseToken); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM queue_items WHERE id = ?`, req.ID); err != nil {
		return fmt.Errorf("remove item: %w", err)
	}
	return nil
}

func (s *store) nack(ctx context.Context, req *database.NackRequest) error {
	if err := req.Validate(); err != nil {
		return err
	}
	now := s.now()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := leased(ctx, tx, req.ID, req.LeaseToken); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE queue_items SET lease_token = NULL, lease_holder = NULL, lease_expires_at = NULL, available_at = ? WHERE id = ?`,
			toNanos(now.Add(req.RetryAfter)), req.ID); err != nil {
			return fmt.Errorf("release item: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("nack %q: %w", req.ID, err)
	}
	return nil
}
