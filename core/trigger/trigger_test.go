package trigger

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/palvella/palvella/core/spec"
)

func TestVerify(t *testing.T) {
	secret, body := []byte("k"), []byte(`{"ref":"main"}`)
	good := Sign(secret, body)
	if !strings.HasPrefix(good, "sha256=") || len(good) != len("sha256=")+64 {
		t.Fatalf("Sign = %q", good)
	}
	for _, c := range []struct {
		header string
		ok     bool
	}{
		{good, true},
		{" " + good + " ", true},
		{strings.ToUpper(good[:7]) + good[7:], false},
		{good[:len(good)-1] + "0", good[len(good)-1] == '0'},
		{Sign([]byte("other"), body), false},
		{Sign(secret, append(body, ' ')), false},
		{"sha1=" + good[7:], false},
		{good[7:], false},
		{"sha256=", false},
		{"sha256=zz" + good[9:], false},
		{"", false},
	} {
		if got := Verify(secret, body, c.header); got != c.ok {
			t.Errorf("Verify(%q) = %v, want %v", c.header, got, c.ok)
		}
	}
}

func FuzzVerify(f *testing.F) {
	f.Add([]byte("k"), []byte("{}"), Sign([]byte("k"), []byte("{}")))
	f.Add([]byte(""), []byte(""), "sha256=")
	f.Add([]byte("k"), []byte("x"), "sha256=ZZ")
	f.Fuzz(func(t *testing.T, secret, body []byte, header string) {
		ok := Verify(secret, body, header)
		if ok && strings.TrimSpace(header) != Sign(secret, body) && !strings.EqualFold(strings.TrimSpace(header), Sign(secret, body)) {
			t.Fatalf("Verify accepted %q for a body whose signature is %q", header, Sign(secret, body))
		}
		if !Verify(secret, body, Sign(secret, body)) {
			t.Fatalf("Verify refused Sign's own signature")
		}
	})
}

func FuzzNormalizeNumbers(f *testing.F) {
	f.Add(`{"a": 1, "b": [1.5, 12345678901234567890, {"c": -0}], "d": "x"}`)
	f.Fuzz(func(t *testing.T, s string) {
		var v any
		dec := jsonDecoder(s)
		if dec.Decode(&v) != nil {
			return
		}
		normalizeNumbers(v) // must not panic on any JSON
	})
}

func TestIntervalScheduleKeepsItsPhaseAndCoalescesMissedTimes(t *testing.T) {
	sch, err := scheduleOf(&spec.Trigger{Type: spec.TriggerInterval, Every: "10m"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	if got := sch.first(t0); !got.Equal(t0.Add(10 * time.Minute)) {
		t.Errorf("first = %s", got)
	}
	if got := sch.after(t0, t0.Add(time.Second)); !got.Equal(t0.Add(10 * time.Minute)) {
		t.Errorf("after an on-time firing: %s", got)
	}
	// Down for 35 minutes: the three missed times are one firing, and the
	// next due time keeps the 10-minute phase.
	if got := sch.after(t0, t0.Add(35*time.Minute)); !got.Equal(t0.Add(40 * time.Minute)) {
		t.Errorf("after a 35m outage: %s", got)
	}
	if j := sch.jitter(30 * time.Second); j != 30*time.Second {
		t.Errorf("jitter of 10m = %s", j)
	}
	short, _ := scheduleOf(&spec.Trigger{Type: spec.TriggerInterval, Every: "5s"}, time.Minute)
	if short.every != time.Minute || short.desc != "every 1m0s" {
		t.Errorf("an interval under the minimum: %+v", short)
	}
	if j := short.jitter(30 * time.Second); j != 6*time.Second {
		t.Errorf("jitter of 1m = %s", j)
	}
}

func TestCronScheduleReadsItsTimeZone(t *testing.T) {
	sch, err := scheduleOf(&spec.Trigger{Type: spec.TriggerCron, Expression: "0 3 * * *", Timezone: "Europe/Helsinki"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// 03:00 in Helsinki in January (UTC+2) is 01:00 UTC.
	now := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	if got, want := sch.first(now), time.Date(2026, 1, 10, 1, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("next = %s, want %s", got, want)
	}
	// In July (UTC+3) it is 00:00 UTC.
	now = time.Date(2026, 7, 10, 0, 30, 0, 0, time.UTC)
	if got, want := sch.after(now, now), time.Date(2026, 7, 11, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("next = %s, want %s", got, want)
	}
	if _, err := scheduleOf(&spec.Trigger{Type: spec.TriggerCron, Expression: "0 3 * * *", Timezone: "Mars/Olympus"}, time.Minute); err == nil {
		t.Error("an unknown zone was accepted")
	}
}

func TestMapParams(t *testing.T) {
	tr := &spec.Trigger{Name: "on-push", Params: map[string]string{"ref": "${{ trigger.payload.ref }}", "who": "${{ trigger.headers[\"x-github-event\"] }} by ${{ trigger.name }}", "plain": "x"}}
	got, err := mapParams(tr, "webhook", map[string]any{"ref": "refs/heads/main"}, map[string]string{"x-github-event": "push"})
	if err != nil {
		t.Fatal(err)
	}
	if got["ref"] != "refs/heads/main" || got["who"] != "push by on-push" || got["plain"] != "x" {
		t.Errorf("params %v", got)
	}
	// A field the payload lacks reads as nothing, as in every expression.
	got, err = mapParams(&spec.Trigger{Params: map[string]string{"ref": "${{ trigger.payload.ref }}"}}, "webhook", map[string]any{}, nil)
	if err != nil || got["ref"] != "" {
		t.Errorf("missing field: %v %v", got, err)
	}
	if _, err := mapParams(&spec.Trigger{Params: map[string]string{"ref": "${{ trigger.payload.( }}"}}, "webhook", nil, nil); err == nil {
		t.Error("a broken expression mapped without error")
	}
}

func jsonDecoder(s string) *json.Decoder {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	return dec
}
