package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/core/server"
)

// uiPipeline is a run page at scale: 300 jobs, one of them printing n
// coloured lines.
func uiPipeline(name string, lines int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: palvella.dev/v1
kind: Pipeline
metadata:
  name: %s
spec:
  jobs:
    - name: log
      actions:
        - name: print
          run: |
            i=1
            while [ $i -le %d ]; do printf '\033[32mline %%s \033[0mof a long log, with \033[1msome\033[0m colour\n' "$i"; i=$((i+1)); done
`, name, lines)
	for i := 1; i < 300; i++ {
		fmt.Fprintf(&b, "    - {name: j%03d, actions: [{name: s, run: \"true\"}]}\n", i)
	}
	return b.String()
}

// BenchmarkWebUI measures the web UI in Debian's Chromium
// (cmd/palvella/testdata/ui/bench.mjs), each figure as a ratio against a
// baseline taken in the same run: the first contentful paint of `/`, cold,
// against a bare static page's; the time from opening a finished run of
// 300 jobs to its 10,000-line log's last line on screen, and the longest
// task meanwhile, against the same page with a 100-line log. It needs
// Node.js, Chromium and the UI tests' npm packages (npm ci in
// cmd/palvella/testdata/ui), as the browser tests do.
func BenchmarkWebUI(b *testing.B) {
	node, err := exec.LookPath("node")
	if err != nil {
		b.Fatalf("the web UI benchmark needs Node.js: %v", err)
	}
	chromium := os.Getenv("PALVELLA_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	dir := filepath.Join("..", "cmd", "palvella", "testdata", "ui")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		b.Fatalf("run npm ci in %s first (the browser tests do it): %v", dir, err)
	}
	c, home := scaleServer(b)
	apply(b, c, uiPipeline("ui-big", 10000))
	apply(b, c, uiPipeline("ui-small", 100))
	ctx := context.Background()
	runs := map[string]string{}
	for _, p := range []string{"ui-big", "ui-small"} {
		r, err := c.StartRun(ctx, "default", p, nil)
		if err != nil {
			b.Fatal(err)
		}
		for !r.Status.Terminal() {
			time.Sleep(200 * time.Millisecond)
			if r, err = c.GetRun(ctx, "default", r.Name); err != nil {
				b.Fatal(err)
			}
		}
		if r.Status != resource.StatusSuccess {
			b.Fatalf("run %s: %s", r.Name, r.Status)
		}
		runs[p] = r.Name
	}
	raw, err := os.ReadFile(filepath.Join(home, server.CLIConfigFile))
	if err != nil {
		b.Fatal(err)
	}
	var cc server.CLIConfig
	if err := json.Unmarshal(raw, &cc); err != nil {
		b.Fatal(err)
	}
	var s struct {
		BareFirstPaintMs, UIFirstPaintMs, FirstPaintRatio float64
		SmallRenderedMs, BigRenderedMs, RenderedRatio     float64
		SmallLongestTaskMs, BigLongestTaskMs              float64
		LongestTaskRatio, BigSearchMs, BigRowsInPage      float64
	}
	b.ResetTimer()
	for range b.N {
		cmd := exec.Command(node, "bench.mjs")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PALVELLA_URL="+cc.Server, "TOKEN="+cc.Token, "BIG_RUN="+runs["ui-big"],
			"SMALL_RUN="+runs["ui-small"], "CHROMIUM="+chromium)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("bench.mjs: %v\n%s\n%s", err, out, stderr.String())
		}
		var res struct {
			Summary json.RawMessage `json:"summary"`
		}
		if err := json.Unmarshal(out, &res); err != nil {
			b.Fatalf("bench.mjs printed %s: %v", out, err)
		}
		if err := json.Unmarshal(res.Summary, &s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(s.UIFirstPaintMs, "ui-first-paint-ms")
	b.ReportMetric(s.BareFirstPaintMs, "bare-first-paint-ms")
	b.ReportMetric(s.FirstPaintRatio, "first-paint/bare")
	b.ReportMetric(s.BigRenderedMs, "10k-log-rendered-ms")
	b.ReportMetric(s.SmallRenderedMs, "100-log-rendered-ms")
	b.ReportMetric(s.RenderedRatio, "rendered-10k/100")
	b.ReportMetric(s.BigLongestTaskMs, "10k-longest-task-ms")
	b.ReportMetric(s.SmallLongestTaskMs, "100-longest-task-ms")
	b.ReportMetric(s.BigSearchMs, "10k-search-ms")
	b.ReportMetric(s.BigRowsInPage, "10k-rows-in-page")
	b.ReportMetric(0, "ns/op")
}
