package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

// watchPoll is how often Watch reads the history when no notification
// came: a safety net under LISTEN/NOTIFY, which wakes watchers at once.
const watchPoll = 2 * time.Second

// watchBatch is how many changes Watch reads at a time.
const watchBatch = 256

// listBytes bounds the data of one List page: a page ends early (with a
// page token) once its documents reach it, so that a page of large
// documents still fits in one gRPC message (4 MiB by default).
const listBytes = 2 << 20

func encodeLabels(labels map[string]string) (string, error) {
	if len(labels) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(labels)
	if err != nil {
		return "", fmt.Errorf("encode labels: %w", err)
	}
	return string(b), nil
}

func decodeLabels(b []byte) (map[string]string, error) {
	var out map[string]string
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decode stored labels: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func notFound(key database.Key) error {
	return sdk.Errorf(sdk.ErrNotFound, "key", "%s %q not found in namespace %q", key.Kind, key.Name, key.Namespace)
}

// retry runs fn once more when it failed because the database was
// unreachable, if that is safe: always for a read; for a write when
// nothing was sent (pgconn.SafeToRetry) or when the server answered that
// it terminated the session (57P0x: the statement was rolled back). First
// it drops every pooled connection: after PostgreSQL restarts, all of them
// are dead, and each would fail one call.
func (s *store) retry(ctx context.Context, read bool, fn func() error) error {
	err := fn()
	if err == nil || ctx.Err() != nil || !isUnavailable(err) {
		return err
	}
	s.pool.Reset()
	if read || pgconn.SafeToRetry(err) || sessionTerminated(err) {
		err = fn()
	}
	return err
}

// sessionTerminated reports whether the server ended the session
// (admin_shutdown, crash_shutdown or cannot_connect_now) instead of
// answering: whatever the statement did was rolled back.
func sessionTerminated(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03")
}

func (s *store) get(ctx context.Context, key database.Key) (*database.Resource, error) {
	if err := key.Validate(); err != nil {
		return nil, err
	}
	out := database.Resource{Key: key}
	var labels []byte
	err := s.retry(ctx, true, func() error {
		return s.pool.QueryRow(ctx,
			`SELECT revision, labels, data, created_at, updated_at FROM palvella_resources WHERE kind = $1 AND namespace = $2 AND name = $3`,
			key.Kind, key.Namespace, key.Name).Scan(&out.Revision, &labels, &out.Data, &out.CreatedAt, &out.UpdatedAt)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound(key)
	}
	if err != nil {
		return nil, s.fail(ctx, fmt.Sprintf("get %s %q", key.Kind, key.Name), err)
	}
	if out.Labels, err = decodeLabels(labels); err != nil {
		return nil, err
	}
	out.CreatedAt, out.UpdatedAt = out.CreatedAt.UTC(), out.UpdatedAt.UTC()
	return &out, nil
}

// nextRevision is the first statement of every resource write. It locks
// the one row of palvella_revision until the write commits: resource
// writes are serialized across every server on the database, so revisions
// become visible in increasing order. Every write queues it first, so no
// two writes wait for each other's locks in opposite orders.
const nextRevision = `UPDATE palvella_revision SET revision = revision + 1 WHERE id = 1`

// thisRevision is the revision the write took, for its later statements.
const thisRevision = `(SELECT revision FROM palvella_revision WHERE id = 1)`

// recordChange copies the resource as it now is into the history, if the
// write took the current revision.
const recordChange = `INSERT INTO palvella_changes (revision, type, kind, namespace, name, labels, data, created_at, updated_at)
	SELECT revision, $4, kind, namespace, name, labels, data, created_at, updated_at FROM palvella_resources
	WHERE kind = $1 AND namespace = $2 AND name = $3 AND revision = ` + thisRevision

// Each write is one batch: its statements go in one round trip and run in
// one implicit transaction (the batch ends with a single Sync), so an
// error in any of them rolls back all of them. A refused update or delete
// still takes a revision (the batch commits, writing nothing else): the
// revisions increase, with gaps.

func (s *store) create(ctx context.Context, in *database.Resource) (*database.Resource, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	labels, err := encodeLabels(in.Labels)
	if err != nil {
		return nil, err
	}
	k := in.Key
	out := database.Resource{Key: k, Labels: in.Labels, Data: in.Data}
	err = s.retry(ctx, false, func() error {
		b := &pgx.Batch{}
		b.Queue(nextRevision)
		b.Queue(`INSERT INTO palvella_resources (kind, namespace, name, revision, labels, data, created_at, updated_at)
			VALUES ($1, $2, $3, `+thisRevision+`, $4::jsonb, $5, statement_timestamp(), statement_timestamp())
			RETURNING revision, created_at`, k.Kind, k.Namespace, k.Name, labels, nonNil(in.Data)).
			QueryRow(func(row pgx.Row) error { return row.Scan(&out.Revision, &out.CreatedAt) })
		b.Queue(recordChange, k.Kind, k.Namespace, k.Name, int(database.EventCreated))
		return s.pool.SendBatch(ctx, b).Close()
	})
	if isUniqueViolation(err) {
		return nil, sdk.Errorf(sdk.ErrAlreadyExists, "key", "%s %q already exists in namespace %q", k.Kind, k.Name, k.Namespace)
	}
	if err != nil {
		return nil, s.fail(ctx, fmt.Sprintf("create %s %q", k.Kind, k.Name), err)
	}
	out.CreatedAt = out.CreatedAt.UTC()
	out.UpdatedAt = out.CreatedAt
	return &out, nil
}

// refused says why an update or delete of key found no resource at the
// expected revision: stored is the revision stored now (nil: none).
func refused(key database.Key, field string, stored *int64, expected int64) error {
	if stored == nil {
		return notFound(key)
	}
	return sdk.Errorf(sdk.ErrConflict, field, "the stored revision is %d, not %d", *stored, expected)
}

func (s *store) update(ctx context.Context, in *database.Resource) (*database.Resource, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	if in.Revision <= 0 {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "revision", "must be the stored revision the update is based on")
	}
	labels, err := encodeLabels(in.Labels)
	if err != nil {
		return nil, err
	}
	k := in.Key
	out := database.Resource{Key: k, Labels: in.Labels, Data: in.Data}
	var (
		updated bool
		stored  *int64
	)
	err = s.retry(ctx, false, func() error {
		updated, stored = false, nil
		b := &pgx.Batch{}
		b.Queue(nextRevision)
		b.Queue(`UPDATE palvella_resources SET revision = `+thisRevision+`, labels = $4::jsonb, data = $5, updated_at = statement_timestamp()
			WHERE kind = $1 AND namespace = $2 AND name = $3 AND revision = $6
			RETURNING revision, created_at, updated_at`, k.Kind, k.Namespace, k.Name, labels, nonNil(in.Data), in.Revision).
			Query(func(rows pgx.Rows) error {
				for rows.Next() {
					updated = true
					if err := rows.Scan(&out.Revision, &out.CreatedAt, &out.UpdatedAt); err != nil {
						return err
					}
				}
				return rows.Err()
			})
		b.Queue(recordChange, k.Kind, k.Namespace, k.Name, int(database.EventUpdated))
		b.Queue(`SELECT revision FROM palvella_resources WHERE kind = $1 AND namespace = $2 AND name = $3`, k.Kind, k.Namespace, k.Name).
			Query(func(rows pgx.Rows) error {
				for rows.Next() {
					var rev int64
					if err := rows.Scan(&rev); err != nil {
						return err
					}
					stored = &rev
				}
				return rows.Err()
			})
		return s.pool.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return nil, s.fail(ctx, fmt.Sprintf("update %s %q", k.Kind, k.Name), err)
	}
	if !updated {
		return nil, fmt.Errorf("update %s %q: %w", k.Kind, k.Name, refused(k, "revision", stored, in.Revision))
	}
	out.CreatedAt, out.UpdatedAt = out.CreatedAt.UTC(), out.UpdatedAt.UTC()
	return &out, nil
}

func (s *store) delete(ctx context.Context, req *database.DeleteRequest) error {
	if err := req.Key.Validate(); err != nil {
		return err
	}
	if req.ExpectedRevision < 0 {
		return sdk.Errorf(sdk.ErrInvalidArgument, "expectedRevision", "must not be negative")
	}
	k := req.Key
	var (
		deleted bool
		stored  *int64
	)
	err := s.retry(ctx, false, func() error {
		deleted, stored = false, nil
		b := &pgx.Batch{}
		b.Queue(nextRevision)
		// The deletion's event holds the last stored state, with the
		// revision of the deletion and its time.
		b.Queue(`INSERT INTO palvella_changes (revision, type, kind, namespace, name, labels, data, created_at, updated_at)
			SELECT `+thisRevision+`, $4, kind, namespace, name, labels, data, created_at, statement_timestamp() FROM palvella_resources
			WHERE kind = $1 AND namespace = $2 AND name = $3 AND ($5::bigint = 0 OR revision = $5)`,
			k.Kind, k.Namespace, k.Name, int(database.EventDeleted), req.ExpectedRevision)
		b.Queue(`DELETE FROM palvella_resources WHERE kind = $1 AND namespace = $2 AND name = $3 AND ($4::bigint = 0 OR revision = $4)`,
			k.Kind, k.Namespace, k.Name, req.ExpectedRevision).
			Exec(func(ct pgconn.CommandTag) error { deleted = ct.RowsAffected() == 1; return nil })
		b.Queue(`SELECT revision FROM palvella_resources WHERE kind = $1 AND namespace = $2 AND name = $3`, k.Kind, k.Namespace, k.Name).
			Query(func(rows pgx.Rows) error {
				for rows.Next() {
					var rev int64
					if err := rows.Scan(&rev); err != nil {
						return err
					}
					stored = &rev
				}
				return rows.Err()
			})
		return s.pool.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return s.fail(ctx, fmt.Sprintf("delete %s %q", k.Kind, k.Name), err)
	}
	if !deleted {
		return fmt.Errorf("delete %s %q: %w", k.Kind, k.Name, refused(k, "expectedRevision", stored, req.ExpectedRevision))
	}
	return nil
}

func (s *store) list(ctx context.Context, req *database.ListRequest) (*database.ListResponse, error) {
	pageSize, err := req.Validate()
	if err != nil {
		return nil, err
	}
	var (
		where = []string{"kind = $1"}
		args  = []any{req.Kind}
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if req.Namespace != "" {
		where = append(where, "namespace = "+arg(req.Namespace))
	}
	if req.PageToken != "" {
		tok, err := database.DecodePageToken(req.PageToken)
		if err != nil {
			return nil, err
		}
		where = append(where, "(namespace, name) > ("+arg(tok.Namespace)+", "+arg(tok.Name)+")")
	}
	if len(req.LabelSelector) > 0 {
		sel, err := encodeLabels(req.LabelSelector)
		if err != nil {
			return nil, err
		}
		where = append(where, "labels @> "+arg(sel)+"::jsonb")
	}
	// One statement, so the page and the revision are one snapshot: the
	// revision row joined with the page (none when the page is empty).
	q := `SELECT c.revision, r.namespace, r.name, r.revision, r.labels, r.data, r.created_at, r.updated_at
		FROM palvella_revision c LEFT JOIN LATERAL (
			SELECT namespace, name, revision, labels, data, created_at, updated_at FROM palvella_resources
			WHERE ` + strings.Join(where, " AND ") + `
			ORDER BY namespace, name LIMIT ` + arg(pageSize+1) + `
		) r ON true WHERE c.id = 1 ORDER BY r.namespace, r.name`
	var (
		out  *database.ListResponse
		full bool // ended early by listBytes
	)
	err = s.retry(ctx, true, func() error {
		out, full = &database.ListResponse{Items: []database.Resource{}}, false
		rows, err := s.pool.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		size := 0
		for rows.Next() {
			var (
				ns, name         *string
				rev              *int64
				labels, data     []byte
				created, updated *time.Time
			)
			if err := rows.Scan(&out.Revision, &ns, &name, &rev, &labels, &data, &created, &updated); err != nil {
				return err
			}
			if name == nil {
				continue // the empty page
			}
			r := database.Resource{Key: database.Key{Kind: req.Kind, Namespace: *ns, Name: *name}, Revision: *rev, Data: data,
				CreatedAt: created.UTC(), UpdatedAt: updated.UTC()}
			if r.Labels, err = decodeLabels(labels); err != nil {
				return err
			}
			out.Items = append(out.Items, r)
			if size += len(r.Data) + len(labels); size >= listBytes && len(out.Items) <= pageSize {
				full = true
				break
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, s.fail(ctx, fmt.Sprintf("list %q", req.Kind), err)
	}
	switch {
	case len(out.Items) > pageSize:
		out.Items = out.Items[:pageSize]
		out.NextPageToken = database.EncodePageToken(out.Items[pageSize-1])
	case full:
		out.NextPageToken = database.EncodePageToken(out.Items[len(out.Items)-1])
	}
	return out, nil
}

// changesAfter reads up to limit changes of the watched kind after rev,
// with the last compacted revision, in one snapshot.
func (s *store) changesAfter(ctx context.Context, req *database.WatchRequest, rev int64, limit int) ([]database.Event, int64, error) {
	filter := `kind = $1 AND revision > $2`
	args := []any{req.Kind, rev, limit}
	if req.Namespace != "" {
		filter += ` AND namespace = $4`
		args = append(args, req.Namespace)
	}
	q := `SELECT c.revision, h.revision, h.type, h.namespace, h.name, h.labels, h.data, h.created_at, h.updated_at
		FROM palvella_compaction c LEFT JOIN LATERAL (
			SELECT revision, type, namespace, name, labels, data, created_at, updated_at FROM palvella_changes
			WHERE ` + filter + ` ORDER BY revision LIMIT $3
		) h ON true WHERE c.id = 1 ORDER BY h.revision`
	var (
		out       []database.Event
		compacted int64
	)
	err := s.retry(ctx, true, func() error {
		out = nil
		rows, err := s.pool.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				rev              *int64
				typ              *int16
				ns, name         *string
				labels, data     []byte
				created, updated *time.Time
			)
			if err := rows.Scan(&compacted, &rev, &typ, &ns, &name, &labels, &data, &created, &updated); err != nil {
				return err
			}
			if rev == nil {
				continue // no change
			}
			ev := database.Event{Type: database.EventType(*typ), Resource: database.Resource{
				Key: database.Key{Kind: req.Kind, Namespace: *ns, Name: *name}, Revision: *rev, Data: data,
				CreatedAt: created.UTC(), UpdatedAt: updated.UTC(),
			}}
			if ev.Resource.Labels, err = decodeLabels(labels); err != nil {
				return err
			}
			out = append(out, ev)
		}
		return rows.Err()
	})
	return out, compacted, err
}

// watch replays the changes after req.AfterRevision, then waits for more:
// woken by the notification of each change (LISTEN/NOTIFY, from any
// server), or every watchPoll. Revisions become visible in increasing
// order (see nextRevision), so reading "after the last one delivered"
// never skips one. While PostgreSQL cannot be reached the watch waits and
// retries instead of failing; once the database is back (the listener
// reconnects and wakes it) it resumes after the last revision it
// delivered, so its caller sees every change once, in order.
func (s *store) watch(ctx context.Context, req *database.WatchRequest, fn func(database.Event) error) error {
	if err := req.Validate(); err != nil {
		return err
	}
	after := req.AfterRevision
	timer := time.NewTimer(watchPoll)
	defer timer.Stop()
	backoff := 100 * time.Millisecond
	for {
		wake := s.changes() // before reading, so a change during the read is not missed
		evs, compacted, err := s.changesAfter(ctx, req, after, watchBatch)
		if err == nil && after < compacted {
			err = sdk.Errorf(sdk.ErrFailedPrecondition, "afterRevision",
				"the history up to revision %d was compacted; list again and watch after the list's revision", compacted)
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !isUnavailable(err) {
				return s.fail(ctx, fmt.Sprintf("watch %q", req.Kind), err)
			}
			s.log.Debug("watch waits for the database", "kind", req.Kind, "after", after, "error", s.redact(err))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-wake:
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		for _, ev := range evs {
			if err := fn(ev); err != nil {
				return err
			}
			after = ev.Resource.Revision
		}
		if len(evs) == watchBatch {
			continue
		}
		timer.Reset(watchPoll)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-timer.C:
		}
	}
}
