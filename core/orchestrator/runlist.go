package orchestrator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/palvella/palvella/core/api/wire"
	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// Runs are listed newest first, a page at a time, which the database's
// key order (by name: deploy-10 before deploy-9) does not give. Two ways,
// both with page tokens that stay right while runs are added:
//
//   - The runs of one pipeline are walked down from its last run number
//     (Pipeline.LastRun), a page's runs read at once: a page costs its own
//     size in reads, however long the history. The token is the number to
//     go on from ("n:41").
//   - The runs of a whole namespace are all read, ordered by creation
//     (then pipeline, then number, newest first) and cut after the token,
//     the last run of the previous page ("t:<unix nanoseconds>:<pipeline>:<number>").
//     This reads every run of the namespace for each page; a client that
//     pages through long histories names the pipeline.
//
// See docs/design/web-ui.md.

// defaultRunPage is the page size when the request gives none.
const defaultRunPage = 100

// ListRuns lists runs newest first, of one pipeline when pipeline is not
// empty. The runs are their summaries: status and counts, without their
// jobs.
func (o *Orchestrator) ListRuns(ctx context.Context, ns, pipeline string, page wire.PageRequest) (*wire.Page[resource.Run], error) {
	size := page.Size
	if size <= 0 {
		size = defaultRunPage
	}
	var out *wire.Page[resource.Run]
	var err error
	if pipeline != "" {
		out, err = o.pipelineRuns(ctx, ns, pipeline, size, page.Token)
	} else {
		out, err = o.namespaceRuns(ctx, ns, size, page.Token)
	}
	if err != nil {
		return nil, err
	}
	for i := range out.Items {
		if out.Items[i].Jobs == nil {
			out.Items[i].Jobs = []resource.JobStatus{}
		}
	}
	return out, nil
}

func badRunToken() error {
	return sdk.Errorf(sdk.ErrInvalidArgument, "pageToken", "not a page token of this run list (start again without one)")
}

// pipelineRuns walks a pipeline's runs down from its last number.
func (o *Orchestrator) pipelineRuns(ctx context.Context, ns, pipeline string, size int, token string) (*wire.Page[resource.Run], error) {
	var from int64
	if token != "" {
		n, ok := strings.CutPrefix(token, "n:")
		v, err := strconv.ParseInt(n, 10, 64)
		if !ok || err != nil || v < 0 {
			return nil, badRunToken()
		}
		from = v
	} else {
		var pl resource.Pipeline
		err := o.store.get(ctx, resource.KindPipeline, ns, pipeline, &pl)
		if errors.Is(err, sdk.ErrNotFound) {
			return &wire.Page[resource.Run]{Items: []resource.Run{}}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read pipeline %s/%s: %w", ns, pipeline, err)
		}
		from = pl.LastRun
	}
	out := &wire.Page[resource.Run]{Items: []resource.Run{}}
	n := from
	for n > 0 && len(out.Items) < size {
		// Read the next numbers at once; a number with no run (its
		// start failed, or it was deleted) is skipped.
		want := min(int64(size-len(out.Items)), n)
		got := make([]*resource.Run, want)
		errs := make([]error, want)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for i := range want {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				r := &resource.Run{}
				err := o.store.get(ctx, resource.KindRun, ns, pipeline+"-"+strconv.FormatInt(n-i, 10), r)
				if err == nil {
					got[i] = r
				} else if !errors.Is(err, sdk.ErrNotFound) {
					errs[i] = err
				}
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("list the runs of %s/%s: %w", ns, pipeline, err)
		}
		for _, r := range got {
			if r != nil {
				out.Items = append(out.Items, *r)
			}
		}
		n -= want
	}
	if n > 0 {
		out.NextPageToken = "n:" + strconv.FormatInt(n, 10)
	}
	return out, nil
}

// runCursor is a run's place in the newest-first order of a namespace.
type runCursor struct {
	created  int64
	pipeline string
	number   int64
}

func cursorOf(r *resource.Run) runCursor {
	return runCursor{created: r.CreatedAt.UnixNano(), pipeline: r.Pipeline, number: r.Number}
}

// before reports whether a comes before b: created later, then by
// pipeline, then the greater number.
func (a runCursor) before(b runCursor) bool {
	if a.created != b.created {
		return a.created > b.created
	}
	if a.pipeline != b.pipeline {
		return a.pipeline < b.pipeline
	}
	return a.number > b.number
}

func (a runCursor) token() string {
	return "t:" + strconv.FormatInt(a.created, 10) + ":" + a.pipeline + ":" + strconv.FormatInt(a.number, 10)
}

func parseRunCursor(token string) (runCursor, error) {
	rest, ok := strings.CutPrefix(token, "t:")
	parts := strings.Split(rest, ":")
	if !ok || len(parts) != 3 {
		return runCursor{}, badRunToken()
	}
	created, err1 := strconv.ParseInt(parts[0], 10, 64)
	number, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return runCursor{}, badRunToken()
	}
	return runCursor{created: created, pipeline: parts[1], number: number}, nil
}

// namespaceRuns reads every run of a namespace and returns the page after
// the token's run.
func (o *Orchestrator) namespaceRuns(ctx context.Context, ns string, size int, token string) (*wire.Page[resource.Run], error) {
	var after *runCursor
	if token != "" {
		c, err := parseRunCursor(token)
		if err != nil {
			return nil, err
		}
		after = &c
	}
	var all []resource.Run
	next := ""
	for {
		items, tok, err := list[resource.Run](ctx, o.store, resource.KindRun, ns, nil, 1000, next)
		if err != nil {
			return nil, err
		}
		for _, r := range items {
			if after == nil || after.before(cursorOf(&r)) {
				all = append(all, r)
			}
		}
		if tok == "" {
			break
		}
		next = tok
	}
	slices.SortFunc(all, func(a, b resource.Run) int {
		ca, cb := cursorOf(&a), cursorOf(&b)
		switch {
		case ca.before(cb):
			return -1
		case cb.before(ca):
			return 1
		}
		return cmp.Compare(a.Name, b.Name)
	})
	out := &wire.Page[resource.Run]{Items: all}
	if len(all) > size {
		out.Items = all[:size]
		out.NextPageToken = cursorOf(&out.Items[size-1]).token()
	}
	if out.Items == nil {
		out.Items = []resource.Run{}
	}
	return out, nil
}
