package trigger

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/core/spec"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// Webhook headers. A call is signed with either signature header, each
// "sha256=" and the hex HMAC-SHA256 of the raw body keyed with the
// trigger's secret, and names its delivery with either delivery header.
const (
	HeaderGitHubSignature   = "X-Hub-Signature-256"
	HeaderSignature         = "X-Palvella-Signature-256"
	HeaderGitHubDelivery    = "X-GitHub-Delivery"
	HeaderDelivery          = "X-Palvella-Delivery"
	HeaderGitHubEvent       = "X-GitHub-Event"
	HeaderEvent             = "X-Palvella-Event"
	maxDeliveryIDLen        = 128
	webhookPathPrefix       = "/hooks/"
	signaturePrefix         = "sha256="
	rejectUnsigned          = "unsigned"
	rejectBadSignature      = "bad-signature"
	rejectTooLarge          = "too-large"
	rejectReplayed          = "replayed"
	rejectNoDelivery        = "no-delivery-id"
	rejectBadPayload        = "bad-payload"
	rejectNoSecret          = "secret-unavailable"
	rejectNotFound          = "not-found"
	errNotFound             = "not found"
	webhookResponseMaxBytes = 0
)

// keptHeaders are the headers of a call that become trigger.headers (with
// lower-case names).
var keptHeaders = []string{HeaderGitHubEvent, HeaderGitHubDelivery, "X-GitHub-Hook-ID", HeaderEvent, HeaderDelivery, "User-Agent", "Content-Type"}

var deliveryRE = regexp.MustCompile(`^[A-Za-z0-9._:-]+$`)

// WebhookResponse is the body of every webhook answer.
type WebhookResponse struct {
	// Record is the trigger record written for the call.
	Record  string `json:"record,omitempty"`
	Outcome string `json:"outcome"`
	Run     string `json:"run,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Sign returns the signature header value of body under secret:
// "sha256=<hex>".
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return signaturePrefix + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header value against body and secret in
// constant time. It reports false for a malformed value.
func Verify(secret, body []byte, header string) bool {
	hexSum, ok := strings.CutPrefix(strings.TrimSpace(header), signaturePrefix)
	if !ok || len(hexSum) != sha256.Size*2 {
		return false
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// WebhookHandler serves POST /hooks/<namespace>/<pipeline>/<trigger>. It
// is meant for a listener of its own that operators may expose alone; it
// needs no token (the signature is the authentication).
func (s *Service) WebhookHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hooks/{ns}/{pipeline}/{trigger}", s.serveWebhook)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeWebhook(w, http.StatusNotFound, WebhookResponse{Outcome: resource.TriggerDropped, Error: errNotFound})
	})
	return mux
}

func writeWebhook(w http.ResponseWriter, status int, body WebhookResponse) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body) // the status is sent; nothing to report to
}

func (s *Service) serveWebhook(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	ctx := r.Context()
	ns, pipeline, name := r.PathValue("ns"), r.PathValue("pipeline"), r.PathValue("trigger")
	now := s.now()
	rec := resource.TriggerRecord{
		Meta: resource.Meta{Namespace: ns, Name: newRecordName(now)},
		Type: spec.TriggerWebhook, Pipeline: pipeline, Trigger: name, FiredAt: now, Headers: map[string]string{},
	}
	for _, h := range keptHeaders {
		if v := r.Header.Get(h); v != "" {
			if len(v) > 256 {
				v = v[:256]
			}
			rec.Headers[strings.ToLower(h)] = v
		}
	}
	// reject records a refused call and answers it.
	reject := func(status int, outcome, reason, why string) {
		rec.Outcome, rec.Reason = outcome, why
		if s.opts.Metrics != nil && outcome == resource.TriggerRejected {
			s.opts.Metrics.TriggerRejections.WithLabelValues(reason).Inc()
		}
		resp := WebhookResponse{Outcome: outcome, Error: why}
		if validNames(ns, pipeline, name) {
			if err := s.createRecord(context.WithoutCancel(ctx), &rec); err != nil {
				s.log.Error("record a refused webhook call", "error", err)
			} else {
				resp.Record = rec.Name
			}
		}
		writeWebhook(w, status, resp)
	}
	// A call for no webhook trigger is answered before its body is read,
	// leaves no record (anyone can send them, as many as they like), and
	// its answer names nothing.
	notFound := func() {
		if s.opts.Metrics != nil {
			s.opts.Metrics.TriggerRejections.WithLabelValues(rejectNotFound).Inc()
		}
		s.log.Debug("webhook call for no webhook trigger", "namespace", clipLog(ns), "pipeline", clipLog(pipeline), "trigger", clipLog(name))
		writeWebhook(w, http.StatusNotFound, WebhookResponse{Outcome: resource.TriggerDropped, Error: errNotFound})
	}
	if !validNames(ns, pipeline, name) {
		notFound()
		return
	}
	t, pl, err := s.pipelineTrigger(ctx, ns, pipeline, name)
	if errors.Is(err, sdk.ErrNotFound) || (err == nil && t.Type != spec.TriggerWebhook) {
		notFound()
		return
	}
	if err != nil {
		s.log.Error("read the pipeline of a webhook call", "namespace", ns, "pipeline", pipeline, "error", err)
		writeWebhook(w, http.StatusServiceUnavailable, WebhookResponse{Outcome: resource.TriggerFailed, Error: "the server could not read the pipeline; try again"})
		return
	}

	body, err := io.ReadAll(io.LimitReader(r.Body, s.opts.MaxBody+1))
	if err != nil {
		reject(http.StatusBadRequest, resource.TriggerRejected, rejectBadPayload, "could not read the body: "+err.Error())
		return
	}
	if int64(len(body)) > s.opts.MaxBody {
		reject(http.StatusRequestEntityTooLarge, resource.TriggerRejected, rejectTooLarge,
			fmt.Sprintf("the body is larger than the %d bytes a webhook call may carry", s.opts.MaxBody))
		return
	}

	sig := r.Header.Get(HeaderSignature)
	if sig == "" {
		sig = r.Header.Get(HeaderGitHubSignature)
	}
	if sig == "" {
		reject(http.StatusUnauthorized, resource.TriggerRejected, rejectUnsigned,
			"unsigned: the call has no "+HeaderGitHubSignature+" or "+HeaderSignature+" header")
		return
	}
	secret, err := s.secret(ctx, ns, pipeline, t)
	if err != nil {
		// The record (read by operators) says why; the caller, who is
		// not authenticated yet, learns nothing about the set-up.
		s.log.Error("read a webhook secret", "namespace", ns, "pipeline", pipeline, "trigger", name, "error", err)
		rec.Outcome, rec.Reason = resource.TriggerRejected, "the trigger's secret could not be read: "+err.Error()
		if s.opts.Metrics != nil {
			s.opts.Metrics.TriggerRejections.WithLabelValues(rejectNoSecret).Inc()
		}
		resp := WebhookResponse{Outcome: resource.TriggerRejected, Error: "the server could not check the signature; try again later"}
		if err := s.createRecord(context.WithoutCancel(ctx), &rec); err != nil {
			s.log.Error("record a refused webhook call", "error", err)
		} else {
			resp.Record = rec.Name
		}
		writeWebhook(w, http.StatusServiceUnavailable, resp)
		return
	}
	if !Verify(secret, body, sig) {
		reject(http.StatusUnauthorized, resource.TriggerRejected, rejectBadSignature,
			"the signature does not match the body and the trigger's secret")
		return
	}

	delivery := r.Header.Get(HeaderDelivery)
	if delivery == "" {
		delivery = r.Header.Get(HeaderGitHubDelivery)
	}
	if delivery == "" || len(delivery) > maxDeliveryIDLen || !deliveryRE.MatchString(delivery) {
		reject(http.StatusBadRequest, resource.TriggerRejected, rejectNoDelivery,
			"the call needs a delivery ID ("+HeaderGitHubDelivery+" or "+HeaderDelivery+": letters, digits, '.', '_', ':' and '-', at most 128)")
		return
	}
	rec.DeliveryID = delivery

	var payload map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&payload); err != nil || payload == nil || dec.More() {
		reject(http.StatusBadRequest, resource.TriggerRejected, rejectBadPayload, "the body is not a JSON object")
		return
	}
	normalizeNumbers(payload)

	// Claim the delivery: its record's name is derived from the delivery
	// ID, so a second call with the same ID finds it taken.
	claimed := rec
	claimed.Name = deliveryRecordName(pipeline, name, delivery)
	claimed.Outcome = "accepted"
	claimed.Kind = resource.KindTriggerRecord
	claimed.Labels = recordLabels(&claimed)
	// The record and the run are written in one database call when the
	// runner can (fireRecorded); otherwise the claim is written first.
	out, replayed, handled, err := s.fireRecorded(context.WithoutCancel(ctx), &firing{rec: claimed, payload: payload, raw: body}, t, pl)
	if !handled {
		if err := s.create(ctx, &claimed); err != nil {
			if errors.Is(err, sdk.ErrAlreadyExists) {
				replayed = true
			} else {
				s.log.Error("record a webhook call", "error", err)
				writeWebhook(w, http.StatusServiceUnavailable, WebhookResponse{Outcome: resource.TriggerFailed, Error: "the server could not record the call; try again"})
				return
			}
		}
		if !replayed {
			out, err = s.fire(context.WithoutCancel(ctx), &firing{rec: claimed, payload: payload, raw: body}, t, true)
		}
	}
	if replayed {
		reject(http.StatusConflict, resource.TriggerRejected, rejectReplayed,
			fmt.Sprintf("replayed: delivery %s was already received (record %s)", delivery, claimed.Name))
		return
	}
	if err != nil {
		s.log.Error("record a webhook call", "error", err)
		if out == nil {
			writeWebhook(w, http.StatusServiceUnavailable, WebhookResponse{Outcome: resource.TriggerFailed, Error: "the server could not record the call; try again"})
			return
		}
	}
	resp := WebhookResponse{Record: out.Name, Outcome: out.Outcome}
	if out.Outcome != resource.TriggerStarted {
		resp.Error = out.Reason
		writeWebhook(w, http.StatusUnprocessableEntity, resp)
		return
	}
	resp.Run = out.Runs[0]
	if s.opts.Metrics != nil {
		s.opts.Metrics.WebhookLatency.Observe(time.Since(arrived).Seconds())
	}
	writeWebhook(w, http.StatusAccepted, resp)
}

// deliveryRecordName is the record name that claims a delivery ID.
func deliveryRecordName(pipeline, trigger, delivery string) string {
	sum := sha256.Sum256([]byte(pipeline + "\x00" + trigger + "\x00" + delivery))
	return "wh-" + hex.EncodeToString(sum[:16])
}

// secret returns a webhook trigger's HMAC key.
func (s *Service) secret(ctx context.Context, ns, pipeline string, t *spec.Trigger) ([]byte, error) {
	if t.Secret == nil {
		return nil, errors.New("the trigger has no secret")
	}
	if t.Secret.FromCredential == "" {
		if t.Secret.Value == "" {
			return nil, errors.New("the trigger's secret is empty")
		}
		return []byte(t.Secret.Value), nil
	}
	if s.opts.Secret == nil {
		return nil, fmt.Errorf("no credential store to read credential %q from", t.Secret.FromCredential)
	}
	v, err := s.opts.Secret(ctx, ns, pipeline, t.Secret.FromCredential)
	if err != nil {
		return nil, fmt.Errorf("read credential %q: %w", t.Secret.FromCredential, err)
	}
	if len(v) == 0 {
		return nil, fmt.Errorf("credential %q is empty", t.Secret.FromCredential)
	}
	return v, nil
}

// nameRE bounds no length (validNames does): a repetition such as
// {0,252} compiles to hundreds of states, a millisecond at the start of
// every process of this binary, builtin plugins included.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func validNames(names ...string) bool {
	for _, n := range names {
		if len(n) > 253 || !nameRE.MatchString(n) {
			return false
		}
	}
	return true
}

// normalizeNumbers turns json.Number into int64 when whole, float64
// otherwise, so payload numbers read as numbers in expressions and a
// large ID is not rounded.
func normalizeNumbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = normalizeNumbers(e)
		}
	case []any:
		for i, e := range t {
			t[i] = normalizeNumbers(e)
		}
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		if f, err := t.Float64(); err == nil {
			return f
		}
		return t.String()
	}
	return v
}

// clipLog shortens what a log line quotes from an unauthenticated path.
func clipLog(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
