package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/palvella/palvella/core/api/wire"
	"github.com/palvella/palvella/core/events"
	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/plugin-sdk/types"
)

// ErrStreamEnded is returned by Events when the server ended the stream
// (it fell behind, or it is shutting down); reconnect with the last seq.
var ErrStreamEnded = errors.New("client: the event stream ended")

// FollowLogs follows the logs of a run (of one job when job is not empty,
// of one action when action is not empty too), calling fn with each line
// until the selected actions have ended. It returns the final status of
// what it followed.
func (c *Client) FollowLogs(ctx context.Context, namespace, run, job, action string, fn func(wire.LogLine) error) (*wire.StreamEnd, error) {
	path := nsPath(namespace, "runs", run, "logs", "stream")
	q := url.Values{}
	if action != "" {
		path = nsPath(namespace, "runs", run, "jobs", job, "actions", action, "log", "stream")
	} else if job != "" {
		q.Set("job", job)
	}
	var end *wire.StreamEnd
	err := c.stream(ctx, path, q, func(event, _, data string) error {
		switch event {
		case "line":
			var l wire.LogLine
			if err := json.Unmarshal([]byte(data), &l); err != nil {
				return fmt.Errorf("decode a log line: %w", err)
			}
			return fn(l)
		case "end":
			end = &wire.StreamEnd{}
			if err := json.Unmarshal([]byte(data), end); err != nil {
				return fmt.Errorf("decode the end of the stream: %w", err)
			}
			return io.EOF
		case "error":
			return streamError(data)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("follow the logs of run %q: %w", namespace+"/"+run, err)
	}
	if end == nil {
		return nil, fmt.Errorf("follow the logs of run %q: %w", namespace+"/"+run, ErrStreamEnded)
	}
	return end, nil
}

// EventsRequest selects events.
type EventsRequest struct {
	// Namespace and Pipeline, when not empty, filter the events.
	Namespace, Pipeline string
	// Replay first delivers the events the server still keeps numbered
	// after After.
	Replay bool
	After  uint64
	// Once ends the stream after the replayed events instead of
	// following.
	Once bool
}

// Events follows the event stream, calling fn with each event, until ctx
// ends (it then returns ctx's error), fn fails, or the server ends the
// stream (ErrStreamEnded; with Once, nil).
func (c *Client) Events(ctx context.Context, req EventsRequest, fn func(events.Event) error) error {
	namespace, pipeline, after := req.Namespace, req.Pipeline, req.After
	path := "/events"
	if namespace != "" {
		path = nsPath(namespace, "events")
	}
	q := url.Values{}
	if pipeline != "" {
		q.Set("pipeline", pipeline)
	}
	if req.Replay || req.Once {
		q.Set("after", strconv.FormatUint(after, 10))
	}
	if req.Once {
		q.Set("once", "true")
	}
	ended := false
	err := c.stream(ctx, path, q, func(event, _, data string) error {
		switch event {
		case "hello":
			return nil
		case "end":
			ended = true
			return io.EOF
		case "error":
			return streamError(data)
		}
		var e events.Event
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			return fmt.Errorf("decode an event: %w", err)
		}
		if e.Type == events.TypeOverflow {
			return fmt.Errorf("%w: %s", ErrStreamEnded, e.Reason)
		}
		return fn(e)
	})
	if err == nil && ended {
		return nil
	}
	if err == nil {
		err = ErrStreamEnded
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("follow events: %w", err)
}

func streamError(data string) error {
	var b wire.ErrorBody
	if err := json.Unmarshal([]byte(data), &b); err != nil {
		return fmt.Errorf("the server ended the stream with an error: %s", data)
	}
	out := &wire.Error{Kind: types.ErrInternal, Code: b.Code, Field: b.Field, Message: b.Message}
	for _, c := range wire.ErrorCodes {
		if c.Code == b.Code && c.Err != nil {
			out.Kind = c.Err
			break
		}
	}
	return out
}

// stream reads a text/event-stream, calling fn with each event. fn
// returning io.EOF ends the stream without error.
func (c *Client) stream(ctx context.Context, path string, q url.Values, fn func(event, id, data string) error) error {
	resp, err := c.send(ctx, http.MethodGet, path, q, "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rd := bufio.NewReaderSize(resp.Body, 64<<10)
	var event, id string
	var data strings.Builder
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read the stream: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if event != "" || data.Len() > 0 {
				if event == "" {
					event = "message"
				}
				if err := fn(event, id, data.String()); err != nil {
					if errors.Is(err, io.EOF) {
						return nil
					}
					return err
				}
			}
			event, id = "", ""
			data.Reset()
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "id:"):
			id = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
}

// Timeline returns when each job and action of a run waited and ran.
func (c *Client) Timeline(ctx context.Context, namespace, run string) (*wire.Timeline, error) {
	var t wire.Timeline
	if err := c.do(ctx, http.MethodGet, nsPath(namespace, "runs", run, "timeline"), nil, "", nil, &t); err != nil {
		return nil, fmt.Errorf("get the timeline of run %q: %w", namespace+"/"+run, err)
	}
	return &t, nil
}

// DumpRun returns everything about a run, with credential values masked.
func (c *Client) DumpRun(ctx context.Context, namespace, run string) (*wire.RunDump, error) {
	var d wire.RunDump
	if err := c.do(ctx, http.MethodGet, nsPath(namespace, "runs", run, "dump"), nil, "", nil, &d); err != nil {
		return nil, fmt.Errorf("dump run %q: %w", namespace+"/"+run, err)
	}
	return &d, nil
}

// ListTriggerRecords lists trigger records, of one pipeline when pipeline
// is not empty, oldest first.
func (c *Client) ListTriggerRecords(ctx context.Context, namespace, pipeline string, page wire.PageRequest) (*wire.Page[resource.TriggerRecord], error) {
	q := pageQuery(page)
	if pipeline != "" {
		q.Set("pipeline", pipeline)
	}
	var p wire.Page[resource.TriggerRecord]
	if err := c.do(ctx, http.MethodGet, nsPath(namespace, "triggers", "records"), q, "", nil, &p); err != nil {
		return nil, fmt.Errorf("list the trigger records of %q: %w", namespace, err)
	}
	return &p, nil
}

// GetTriggerRecord returns a trigger record.
func (c *Client) GetTriggerRecord(ctx context.Context, namespace, name string) (*resource.TriggerRecord, error) {
	var r resource.TriggerRecord
	if err := c.do(ctx, http.MethodGet, nsPath(namespace, "triggers", "records", name), nil, "", nil, &r); err != nil {
		return nil, fmt.Errorf("get trigger record %q: %w", namespace+"/"+name, err)
	}
	return &r, nil
}
