package orchestrator

import (
	"fmt"
	"testing"
	"time"

	"github.com/palvella/palvella/core/resource"
)

// BenchmarkSchedule1000JobDAG drives the scheduler through a 1,000-job DAG
// (10 layers of 100 jobs, each requiring two jobs of the layer before, and
// every tenth job with an `if`), completing each queued job, until the run
// ends. The op is the whole DAG; ns/job is the scheduler's cost per job.
func BenchmarkSchedule1000JobDAG(b *testing.B) {
	const layers, width = 10, 100
	p := &plan{}
	for l := range layers {
		for w := range width {
			j := planJob{Name: fmt.Sprintf("j%d-%d", l, w)}
			if l > 0 {
				j.Requires = []string{fmt.Sprintf("j%d-%d", l-1, w), fmt.Sprintf("j%d-%d", l-1, (w+1)%width)}
			}
			if w%10 == 0 {
				j.If = `params.environment != "prod"`
			}
			p.Jobs = append(p.Jobs, j)
		}
	}
	now := time.Now()
	for b.Loop() {
		r := newRun(p)
		for q := advance(r, p, exprEval{}, now); len(q) > 0; q = advance(r, p, exprEval{}, now) {
			for _, name := range q {
				setJob(r.Job(name), resource.StatusSuccess, "", now)
			}
		}
		if r.Status != resource.StatusSuccess {
			b.Fatalf("run = %s", r.Status)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(layers*width), "ns/job")
}
