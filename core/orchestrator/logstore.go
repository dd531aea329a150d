package orchestrator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/storage"
)

// storageLogKey is where an action's log was kept in one object, before
// logs were stored in chunks; chunk i is at storageLogKey + ".%06d".
func storageLogKey(job, action string) string { return "logs/" + job + "/" + action + ".log" }

// storedLogChunks keeps an action's log chunks in run storage.
type storedLogChunks struct {
	o     *Orchestrator
	scope storage.Scope
	key   string
	// first: the job never ran before this execution, so no earlier
	// attempt left a log to clear (one storage call less an action).
	first bool
}

func (o *Orchestrator) logChunks(run *resource.Run, job, action string) *storedLogChunks {
	return &storedLogChunks{o: o, scope: storage.Scope{Kind: storage.ScopeRun, Namespace: run.Namespace, Pipeline: run.Pipeline, Run: run.Name}, key: storageLogKey(job, action)}
}

func (s *storedLogChunks) ref(i int) storage.ObjectRef {
	return storage.ObjectRef{Scope: s.scope, Key: fmt.Sprintf("%s.%06d", s.key, i)}
}

func (s *storedLogChunks) put(ctx context.Context, i int, data []byte) error {
	st, err := s.o.storage(ctx)
	if err != nil {
		return err
	}
	_, err = st.Put(ctx, s.ref(i), bytes.NewReader(data))
	return err
}

func (s *storedLogChunks) get(ctx context.Context, i int) (io.ReadCloser, error) {
	st, err := s.o.storage(ctx)
	if err != nil {
		return nil, err
	}
	rc, _, err := st.Get(ctx, s.ref(i))
	return rc, err
}

// list returns the indices of the stored chunks, in order.
func (s *storedLogChunks) list(ctx context.Context) ([]int, error) {
	st, err := s.o.storage(ctx)
	if err != nil {
		return nil, err
	}
	var chunks []int
	req := &storage.ListRequest{Scope: s.scope, Prefix: s.key + ".", PageSize: storage.MaxPageSize}
	for {
		resp, err := st.List(ctx, req)
		if err != nil {
			return nil, err
		}
		for _, it := range resp.Items {
			suffix := strings.TrimPrefix(it.Ref.Key, s.key+".")
			if i, err := strconv.Atoi(suffix); err == nil && i >= 0 && len(suffix) >= 6 {
				chunks = append(chunks, i)
			}
		}
		if resp.NextPageToken == "" {
			break
		}
		req.PageToken = resp.NextPageToken
	}
	slices.Sort(chunks)
	return chunks, nil
}

func (s *storedLogChunks) clear(ctx context.Context) error {
	if s.first {
		return nil
	}
	chunks, err := s.list(ctx)
	if err != nil || len(chunks) == 0 {
		return err
	}
	st, err := s.o.storage(ctx)
	if err != nil {
		return err
	}
	for _, i := range chunks {
		if err := st.Delete(ctx, s.ref(i)); err != nil && !errors.Is(err, sdk.ErrNotFound) {
			return err
		}
	}
	return nil
}

// reader reads the stored log: its chunks in order, or the one object of
// a log stored before chunks.
func (s *storedLogChunks) reader(ctx context.Context) (io.ReadCloser, error) {
	chunks, err := s.list(ctx)
	if err != nil {
		return nil, err
	}
	if len(chunks) > 0 {
		return &chunksReader{ctx: ctx, s: s, chunks: chunks}, nil
	}
	st, err := s.o.storage(ctx)
	if err != nil {
		return nil, err
	}
	rc, _, err := st.Get(ctx, storage.ObjectRef{Scope: s.scope, Key: s.key})
	if errors.Is(err, sdk.ErrNotFound) {
		return io.NopCloser(&emptyReader{}), nil
	}
	return rc, err
}

// chunksReader reads stored chunks one after the other.
type chunksReader struct {
	ctx    context.Context
	s      *storedLogChunks
	chunks []int
	rc     io.ReadCloser
}

func (r *chunksReader) Read(p []byte) (int, error) {
	for {
		if r.rc == nil {
			if len(r.chunks) == 0 {
				return 0, io.EOF
			}
			rc, err := r.s.get(r.ctx, r.chunks[0])
			r.chunks = r.chunks[1:]
			if errors.Is(err, sdk.ErrNotFound) {
				continue
			}
			if err != nil {
				return 0, err
			}
			r.rc = rc
		}
		n, err := r.rc.Read(p)
		if errors.Is(err, io.EOF) {
			r.rc.Close()
			r.rc = nil
			err = nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
}

func (r *chunksReader) Close() error {
	if r.rc != nil {
		return r.rc.Close()
	}
	return nil
}

// maxLogBytes is the configured bound of one action's stored log.
func (o *Orchestrator) maxLogBytes() int64 {
	if o.opts.MaxLogBytes == 0 {
		return DefaultMaxLogBytes
	}
	return o.opts.MaxLogBytes
}

// openLog starts the log of an action that starts running: its lines are
// masked with mask and stored in run storage as they come.
// first says the job never ran before: no earlier log is there to clear.
func (o *Orchestrator) openLog(run *resource.Run, job, action string, mask func(string) string, first bool) *actionLog {
	report := func(err error) {
		o.log.Error("store action log", "run", run.Name, "job", job, "action", action, "error", err)
	}
	chunks := o.logChunks(run, job, action)
	chunks.first = first
	l := newActionLog(mask, o.maxLogBytes(), chunks, report)
	return o.logs.open(logKey(run.Namespace, run.Name, job, action), l)
}

// saveLog ends an action's log and waits until all of it is in storage.
func (o *Orchestrator) saveLog(_ context.Context, _ *resource.Run, _, _ string, l *actionLog) {
	l.finish()
}
