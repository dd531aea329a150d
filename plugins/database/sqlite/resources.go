package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

// watchPoll is how often Watch looks for changes committed by another
// process; changes made through this store wake it at once.
const watchPoll = 500 * time.Millisecond

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

func decodeLabels(s string) (map[string]string, error) {
	var out map[string]string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("decode stored labels: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func notFound(key database.Key) error {
	return sdk.Errorf(sdk.ErrNotFound, "key", "%s %q not found in namespace %q", key.Kind, key.Name, key.Namespace)
}

func (s *store) get(ctx context.Context, key database.Key) (*database.Resource, error) {
	if err := key.Validate(); err != nil {
		return nil, err
	}
	var (
		labels           string
		created, updated int64
		out              = database.Resource{Key: key}
	)
	err := s.db.QueryRowContext(ctx,
		`SELECT revision, labels, data, created_at, updated_at FROM resources WHERE kind = ? AND namespace = ? AND name = ?`,
		key.Kind, key.Namespace, key.Name).Scan(&out.Revision, &labels, &out.Data, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(key)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %q: %w", key.Kind, key.Name, err)
	}
	if out.Data, err = unpack(out.Data); err != nil {
		return nil, fmt.Errorf("get %s %q: %w", key.Kind, key.Name, err)
	}
	if out.Labels, err = decodeLabels(labels); err != nil {
		return nil, err
	}
	out.CreatedAt, out.UpdatedAt = fromNanos(created), fromNanos(updated)
	return &out, nil
}

// recordChange appends r to the change history as an event of type t and
// returns the revision it took.
func recordChange(ctx context.Context, tx *sql.Tx, t database.EventType, r *database.Resource, labels string, packed []byte) (int64, error) {
	res, err := tx.ExecContext(ctx,
		`INSERT INTO changes (type, kind, namespace, name, labels, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		int(t), r.Key.Kind, r.Key.Namespace, r.Key.Name, labels, packed, toNanos(r.CreatedAt), toNanos(r.UpdatedAt))
	if err != nil {
		return 0, fmt.Errorf("record change: %w", err)
	}
	rev, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("record change: %w", err)
	}
	return rev, nil
}

// writeLabels replaces the indexed labels of a resource.
func writeLabels(ctx context.Context, tx *sql.Tx, id int64, labels map[string]string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM resource_labels WHERE resource_id = ?`, id); err != nil {
		return fmt.Errorf("clear labels: %w", err)
	}
	for k, v := range labels {
		if _, err := tx.ExecContext(ctx, `INSERT INTO resource_labels (resource_id, key, value) VALUES (?, ?, ?)`, id, k, v); err != nil {
			return fmt.Errorf("index label %q: %w", k, err)
		}
	}
	return nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func (s *store) create(ctx context.Context, in *database.Resource) (*database.Resource, error) {
	var out *database.Resource
	err := s.tx(ctx, func(tx *sql.Tx) (err error) {
		out, err = s.createIn(ctx, tx, in)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.notify(in.Key.Kind)
	return out, nil
}

// createIn is create within tx; the caller commits and notifies.
func (s *store) createIn(ctx context.Context, tx *sql.Tx, in *database.Resource) (*database.Resource, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	labels, err := encodeLabels(in.Labels)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	out := database.Resource{Key: in.Key, Labels: in.Labels, Data: in.Data, CreatedAt: now, UpdatedAt: now}
	err = func() error {
		packed := pack(in.Data) // once, for the change and the resource
		rev, err := recordChange(ctx, tx, database.EventCreated, &out, labels, packed)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx,
			`INSERT INTO resources (kind, namespace, name, revision, labels, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			in.Key.Kind, in.Key.Namespace, in.Key.Name, rev, labels, packed, toNanos(now), toNanos(now))
		if isUniqueViolation(err) {
			return sdk.Errorf(sdk.ErrAlreadyExists, "key", "%s %q already exists in namespace %q", in.Key.Kind, in.Key.Name, in.Key.Namespace)
		}
		if err != nil {
			return fmt.Errorf("insert resource: %w", err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("insert resource: %w", err)
		}
		out.Revision = rev
		return writeLabels(ctx, tx, id, in.Labels)
	}()
	if err != nil {
		return nil, fmt.Errorf("create %s %q: %w", in.Key.Kind, in.Key.Name, err)
	}
	return &out, nil
}

// stored is the row of a resource read inside a write transaction.
type stored struct {
	id       int64
	revision int64
	labels   string
	data     []byte // as stored: packed (pack.go)
	created  int64
	updated  int64
}

func readForWrite(ctx context.Context, tx *sql.Tx, key database.Key) (*stored, error) {
	var st stored
	err := tx.QueryRowContext(ctx,
		`SELECT id, revision, labels, data, created_at, updated_at FROM resources WHERE kind = ? AND namespace = ? AND name = ?`,
		key.Kind, key.Namespace, key.Name).Scan(&st.id, &st.revision, &st.labels, &st.data, &st.created, &st.updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(key)
	}
	if err != nil {
		return nil, fmt.Errorf("read stored resource: %w", err)
	}
	return &st, nil
}

func (s *store) update(ctx context.Context, in *database.Resource) (*database.Resource, error) {
	var out *database.Resource
	err := s.tx(ctx, func(tx *sql.Tx) (err error) {
		out, err = s.updateIn(ctx, tx, in)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.notify(in.Key.Kind)
	return out, nil
}

// updateIn is update within tx; the caller commits and notifies.
func (s *store) updateIn(ctx context.Context, tx *sql.Tx, in *database.Resource) (*database.Resource, error) {
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
	now := s.now().UTC()
	var out database.Resource
	err = func() error {
		st, err := readForWrite(ctx, tx, in.Key)
		if err != nil {
			return err
		}
		if st.revision != in.Revision {
			return sdk.Errorf(sdk.ErrConflict, "revision", "the stored revision is %d, not %d", st.revision, in.Revision)
		}
		out = database.Resource{Key: in.Key, Labels: in.Labels, Data: in.Data, CreatedAt: fromNanos(st.created), UpdatedAt: now}
		packed := pack(in.Data) // once, for the change and the resource
		rev, err := recordChange(ctx, tx, database.EventUpdated, &out, labels, packed)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE resources SET revision = ?, labels = ?, data = ?, updated_at = ? WHERE id = ?`,
			rev, labels, packed, toNanos(now), st.id); err != nil {
			return fmt.Errorf("update resource: %w", err)
		}
		out.Revision = rev
		if labels == st.labels {
			// The index holds these labels already (it is written with
			// the labels column, always): most updates change a
			// document, not its labels.
			return nil
		}
		return writeLabels(ctx, tx, st.id, in.Labels)
	}()
	if err != nil {
		return nil, fmt.Errorf("update %s %q: %w", in.Key.Kind, in.Key.Name, err)
	}
	return &out, nil
}

func (s *store) delete(ctx context.Context, req *database.DeleteRequest) error {
	if err := s.tx(ctx, func(tx *sql.Tx) error { return s.deleteIn(ctx, tx, req) }); err != nil {
		return err
	}
	s.notify(req.Key.Kind)
	return nil
}

// deleteIn is delete within tx; the caller commits and notifies.
func (s *store) deleteIn(ctx context.Context, tx *sql.Tx, req *database.DeleteRequest) error {
	if err := req.Key.Validate(); err != nil {
		return err
	}
	if req.ExpectedRevision < 0 {
		return sdk.Errorf(sdk.ErrInvalidArgument, "expectedRevision", "must not be negative")
	}
	err := func() error {
		st, err := readForWrite(ctx, tx, req.Key)
		if err != nil {
			return err
		}
		if req.ExpectedRevision != 0 && st.revision != req.ExpectedRevision {
			return sdk.Errorf(sdk.ErrConflict, "expectedRevision", "the stored revision is %d, not %d", st.revision, req.ExpectedRevision)
		}
		last := database.Resource{Key: req.Key, Data: st.data, CreatedAt: fromNanos(st.created), UpdatedAt: s.now().UTC()}
		if _, err := recordChange(ctx, tx, database.EventDeleted, &last, st.labels, st.data); err != nil {
			return err
		}
		// The labels go with it: resource_labels references resources ON DELETE CASCADE.
		if _, err := tx.ExecContext(ctx, `DELETE FROM resources WHERE id = ?`, st.id); err != nil {
			return fmt.Errorf("delete resource: %w", err)
		}
		return nil
	}()
	if err != nil {
		return fmt.Errorf("delete %s %q: %w", req.Key.Kind, req.Key.Name, err)
	}
	return nil
}

func (s *store) list(ctx context.Context, req *database.ListRequest) (*database.ListResponse, error) {
	pageSize, err := req.Validate()
	if err != nil {
		return nil, err
	}
	var (
		where = []string{"r.kind = ?"}
		args  = []any{req.Kind}
	)
	if req.Namespace != "" {
		where = append(where, "r.namespace = ?")
		args = append(args, req.Namespace)
	}
	if req.PageToken != "" {
		tok, err := database.DecodePageToken(req.PageToken)
		if err != nil {
			return nil, err
		}
		where = append(where, "(r.namespace, r.name) > (?, ?)")
		args = append(args, tok.Namespace, tok.Name)
	}
	keys := make([]string, 0, len(req.LabelSelector))
	for k := range req.LabelSelector {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		where = append(where, "EXISTS (SELECT 1 FROM resource_labels l WHERE l.resource_id = r.id AND l.key = ? AND l.value = ?)")
		args = append(args, k, req.LabelSelector[k])
	}
	args = append(args, pageSize+1)
	q := `SELECT r.namespace, r.name, r.revision, r.labels, r.data, r.created_at, r.updated_at FROM resources r WHERE ` +
		strings.Join(where, " AND ") + ` ORDER BY r.namespace, r.name LIMIT ?`
	out := &database.ListResponse{Items: []database.Resource{}}
	full := false // ended early by listBytes
	// One read transaction, so the page and the revision are one snapshot.
	err = s.read(ctx, func(conn *sql.Conn) error {
		if err := conn.QueryRowContext(ctx, currentRevision).Scan(&out.Revision); err != nil {
			return fmt.Errorf("read the current revision: %w", err)
		}
		rows, err := conn.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		size := 0
		for rows.Next() {
			r := database.Resource{Key: database.Key{Kind: req.Kind}}
			var labels string
			var created, updated int64
			if err := rows.Scan(&r.Key.Namespace, &r.Key.Name, &r.Revision, &labels, &r.Data, &created, &updated); err != nil {
				return err
			}
			if r.Data, err = unpack(r.Data); err != nil {
				return err
			}
			if r.Labels, err = decodeLabels(labels); err != nil {
				return err
			}
			r.CreatedAt, r.UpdatedAt = fromNanos(created), fromNanos(updated)
			out.Items = append(out.Items, r)
			if size += len(r.Data) + len(labels); size >= listBytes && len(out.Items) <= pageSize {
				full = true
				break
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", req.Kind, err)
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

// changesAfter reads up to limit changes of the watched kind after rev.
func (s *store) changesAfter(ctx context.Context, req *database.WatchRequest, rev int64, limit int) ([]database.Event, error) {
	q := `SELECT revision, type, namespace, name, labels, data, created_at, updated_at FROM changes WHERE kind = ? AND revision > ?`
	args := []any{req.Kind, rev}
	if req.Namespace != "" {
		q += ` AND namespace = ?`
		args = append(args, req.Namespace)
	}
	q += ` ORDER BY revision LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	defer rows.Close()
	var out []database.Event
	for rows.Next() {
		var (
			ev               database.Event
			typ              int
			labels           string
			created, updated int64
		)
		ev.Resource.Key.Kind = req.Kind
		if err := rows.Scan(&ev.Resource.Revision, &typ, &ev.Resource.Key.Namespace, &ev.Resource.Key.Name, &labels, &ev.Resource.Data, &created, &updated); err != nil {
			return nil, fmt.Errorf("read changes: %w", err)
		}
		if ev.Resource.Data, err = unpack(ev.Resource.Data); err != nil {
			return nil, err
		}
		ev.Type = database.EventType(typ)
		if ev.Resource.Labels, err = decodeLabels(labels); err != nil {
			return nil, err
		}
		ev.Resource.CreatedAt, ev.Resource.UpdatedAt = fromNanos(created), fromNanos(updated)
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	return out, nil
}

// watch replays the changes after req.AfterRevision, then waits for more.
// Revisions are taken inside the single-writer transaction, so they commit
// in order and a reader never skips one that commits later.
func (s *store) watch(ctx context.Context, req *database.WatchRequest, fn func(database.Event) error) error {
	if err := req.Validate(); err != nil {
		return err
	}
	after := req.AfterRevision
	timer := time.NewTimer(watchPoll)
	defer timer.Stop()
	for {
		wake := s.changesOf(req.Kind) // before reading, so a commit during the read is not missed
		evs, err := s.changesAfter(ctx, req, after, watchBatch)
		if err == nil {
			// Checked after the read: a compaction that removed part of
			// what was read has recorded a revision past after by now.
			err = s.checkNotCompacted(ctx, after)
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("watch %q: %w", req.Kind, err)
		}
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
