package standard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/action"
)

// A webhook URL often carries its secret in the path (Slack's do), so
// messages name only the URL's host.

func newHTTPClient() *http.Client {
	return &http.Client{
		// A webhook that redirects is misconfigured; following it would
		// turn the POST into a GET.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (p *Plugin) runNotify(ctx context.Context, req *action.RunRequest, events action.Events) (*action.Result, error) {
	rawURL, err := optString(req.Params, "url", "")
	if err != nil {
		return nil, err
	}
	message, err := optString(req.Params, "message", "")
	if err != nil {
		return nil, err
	}
	format, err := optString(req.Params, "format", "")
	if err != nil {
		return nil, err
	}
	var payload any
	switch format {
	case "slack":
		payload = map[string]any{"text": message}
	case "", "default":
		payload = map[string]any{"message": message, "run": runInfo(req)}
	default:
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "params.format", "unknown format %q (want slack or default)", format)
	}
	if rawURL == "" {
		return &action.Result{Status: action.StatusSkipped, Message: "no url: notification skipped"}, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "params.url", "must be an absolute http or https URL")
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("notify action %q: encode payload: %w", req.Name, err)
	}

	p.mu.RLock()
	timeout, client := p.notifyTimeout, p.httpClient
	p.mu.RUnlock()
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(tctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "params.url", "cannot be requested")
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("User-Agent", Name+"/"+Version)
	resp, err := client.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return &action.Result{Status: action.StatusFailure, Message: fmt.Sprintf("POST to %s got no answer within %s", u.Host, timeout)}, nil
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // its message repeats the whole URL
		}
		return &action.Result{Status: action.StatusFailure, Message: fmt.Sprintf("POST to %s failed: %v", u.Host, err)}, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // drain so the connection is reused; the body is not used
	_ = resp.Body.Close()

	outputs := map[string]any{"status_code": resp.StatusCode}
	if err := events.Output("status_code", resp.StatusCode); err != nil {
		return nil, fmt.Errorf("notify action %q: send output: %w", req.Name, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &action.Result{Status: action.StatusFailure, Message: fmt.Sprintf("POST to %s answered with status code %d", u.Host, resp.StatusCode), Outputs: outputs}, nil
	}
	return &action.Result{Status: action.StatusSuccess, Message: fmt.Sprintf("notified %s (status code %d)", u.Host, resp.StatusCode), Outputs: outputs}, nil
}

// runInfo is the "run" of the default payload: the context's run, or what
// the execution ref says.
func runInfo(req *action.RunRequest) any {
	if r, ok := req.Context["run"].(map[string]any); ok && len(r) > 0 {
		return r
	}
	return map[string]any{"id": req.Ref.Run, "pipeline": req.Ref.Pipeline, "namespace": req.Ref.Namespace, "job": req.Ref.Job, "action": req.Ref.Action}
}
