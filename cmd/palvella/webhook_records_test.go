package main

import (
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palvella/palvella/core/resource"
)

// Webhooks and their records: a literal secret is refused at apply, calls
// for no webhook trigger leave nothing behind and learn nothing, and
// records are bounded by age and per pipeline.

const hookedPipeline = `apiVersion: palvella.dev/v1
kind: Pipeline
metadata:
  name: hooked
spec:
  triggers:
    - type: webhook
      name: push
      secret: SECRET
  jobs:
    - name: one
      actions:
        - {name: noop, run: "true"}
`

func writeHooked(t *testing.T, secret string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "hooked.yaml")
	if err := os.WriteFile(file, []byte(strings.Replace(hookedPipeline, "SECRET", secret, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// dbSize is the size of the server's databases (sqlite files and their
// journals) under its home.
func dbSize(t *testing.T, home string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(home, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(d.Name(), ".db") {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWebhookLiteralSecretRefused(t *testing.T) {
	s := startServer(t, "")
	out, errOut, code := s.cli("pipeline", "apply", "-f", writeHooked(t, "a-literal-secret"))
	if code == 0 || !strings.Contains(out+errOut, "spec.triggers[0].secret: a webhook secret may not be written in the pipeline") ||
		!strings.Contains(out+errOut, "{from_credential: NAME}") || strings.Contains(out+errOut, "a-literal-secret") {
		t.Fatalf("apply with a literal secret: exit %d\n%s%s", code, out, errOut)
	}
}

func TestUnknownWebhooksLeaveNothing(t *testing.T) {
	s, hooks := webhookServer(t, "")
	// The pipeline names a credential that does not exist (yet).
	s.mustCLI("pipeline", "apply", "-f", writeHooked(t, "{from_credential: hooked-secret}"))
	body := []byte(`{"ref": "refs/heads/main"}`)
	big := []byte(`{"ref": "` + strings.Repeat("x", 2<<20) + `"}`)

	// A missing credential: 503 that names nothing; the record says why.
	r := hook(t, hooks+"/hooks/default/hooked/push", body, "X-Palvella-Signature-256", hmacOf("x", body), "X-Palvella-Delivery", "d-1")
	if r.status != http.StatusServiceUnavailable || strings.Contains(r.body.Error, "hooked-secret") || r.body.Record == "" {
		t.Errorf("missing credential: %d %+v", r.status, r.body)
	}
	var rec resource.TriggerRecord
	s.apiGet("/api/v1/namespaces/default/triggers/records/"+r.body.Record, &rec)
	if !strings.Contains(rec.Reason, `"hooked-secret"`) {
		t.Errorf("the record does not say which credential: %+v", rec)
	}

	before := len(s.records(""))
	time.Sleep(time.Second) // let the server settle
	size := dbSize(t, s.home)
	if size == 0 {
		t.Fatal("no database file under the home")
	}
	paths := []string{"/hooks/default/nothing-here/push", "/hooks/elsewhere/hooked/push", "/hooks/default/hooked/pull", "/hooks/default/hooked/push/more", "/hooks/x"}
	for i := range 1000 {
		p := paths[i%len(paths)]
		b := body
		if i%100 == 0 {
			b = big
		}
		r := hook(t, hooks+p, b, "X-Palvella-Signature-256", hmacOf("guess", b), "X-Palvella-Delivery", "d-x")
		if r.status != http.StatusNotFound || r.body.Error != "not found" || r.body.Record != "" {
			t.Fatalf("%s: %d %+v", p, r.status, r.body)
		}
	}
	if after := dbSize(t, s.home); after != size {
		t.Errorf("the databases grew from %d to %d bytes with 1000 calls for no webhook", size, after)
	}
	if after := len(s.records("")); after != before {
		t.Errorf("%d trigger records, %d before the calls", after, before)
	}
}

func TestTriggerRecordsBounded(t *testing.T) {
	s, hooks := webhookServer(t, "", "--trigger-records-per-pipeline", "20", "--trigger-record-retention", "8s")
	s.mustCLI("credential", "set", "hooked-secret", "--value", "the secret")
	s.mustCLI("pipeline", "apply", "-f", writeHooked(t, "{from_credential: hooked-secret}"))
	url := hooks + "/hooks/default/hooked/push"
	body := []byte(`{}`)
	unsigned := func(n int) {
		for range n {
			if r := hook(t, url, body); r.status != http.StatusUnauthorized {
				t.Fatalf("unsigned call: %d %+v", r.status, r.body)
			}
		}
	}
	signed := hook(t, url, body, "X-Palvella-Signature-256", hmacOf("the secret", body), "X-Palvella-Delivery", "kept")
	if signed.status != http.StatusAccepted {
		t.Fatalf("signed call: %d %+v", signed.status, signed.body)
	}
	unsigned(200)
	waitFor(t, "at most 21 records beside the delivery", func() bool { return len(s.records("hooked")) <= 22 })
	recs := s.records("hooked")
	claimed := false
	for _, r := range recs {
		claimed = claimed || r.DeliveryID == "kept"
	}
	if !claimed {
		t.Errorf("the cap deleted the record of an accepted delivery")
	}
	// Past the retention, every record goes at the next pruning.
	time.Sleep(8500 * time.Millisecond)
	unsigned(2)
	waitFor(t, "the old records to go", func() bool { return len(s.records("hooked")) <= 2 })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
