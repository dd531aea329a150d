package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/api/wire"
	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/core/worker"
	workerv1 "github.com/palvella/palvella/proto/palvella/worker/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// simPipeline is a fan of n jobs of one action each, for simulated
// workers, which report the action's end without running anything.
func simPipeline(n int) string {
	var b strings.Builder
	b.WriteString("apiVersion: palvella.dev/v1\nkind: Pipeline\nmetadata:\n  name: sim\nspec:\n  jobs:\n")
	for i := range n {
		fmt.Fprintf(&b, "    - name: j%d\n      actions:\n        - name: a\n          run: \"true\"\n", i)
	}
	return b.String()
}

// simResult is what a simulation measured.
type simResult struct {
	jobs     int
	elapsed  time.Duration
	leaseLat latencies       // from a Lease call's start to its assignment, for calls that got one
	perWork  map[string]int  // jobs each worker ran
	leased   map[string]int  // assignments per namespace/run/job
	finished map[string]int  // executions whose Finish was accepted, per job
	lost     int             // executions stopped because their lease passed to another
	execs    map[string]bool // executions handed out
}

// simulate drives the replicas of fleet with workers goroutines that speak
// the worker protocol (core/worker.Dial, as `palvella worker` does), each
// to replica i%len(fleet), each with one job at a time: Heartbeat, then
// Lease, RecordAction running and success, Finish, until runs runs of
// jobsPer jobs have ended.
func simulate(tb testing.TB, fleet []replica, addrs []string, workers, runs, jobsPer int) simResult {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := fleet[0].c
	tok, err := c.CreateToken(ctx, wire.TokenRequest{Name: "simulated-workers", Roles: []string{"worker"}})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := c.ApplyPipeline(ctx, api.ApplyRequest{Filename: "sim.yaml", Source: []byte(simPipeline(jobsPer))}); err != nil {
		tb.Fatal(err)
	}
	conns := make([]workerv1.WorkerServiceClient, len(addrs))
	for i, a := range addrs {
		conn, err := worker.Dial("http://"+a, tok.Token, "")
		if err != nil {
			tb.Fatal(err)
		}
		defer conn.Close()
		conns[i] = workerv1.NewWorkerServiceClient(conn)
	}

	res := simResult{perWork: map[string]int{}, leased: map[string]int{}, finished: map[string]int{}, execs: map[string]bool{}}
	var mu sync.Mutex
	var (
		failOnce sync.Once
		failed   error
	)
	fail := func(err error) {
		failOnce.Do(func() { failed = err })
		cancel()
	}
	// The runs start through the replicas in turn before any worker
	// leases, so that the queue holds every job: a Lease call's latency
	// is then the cost of leasing, not a wait for work.
	var names []string
	for r := range runs {
		run, err := fleet[r%len(fleet)].c.StartRun(ctx, "default", "sim", nil)
		if err != nil {
			tb.Fatal(err)
		}
		names = append(names, run.Name)
	}
	var wg sync.WaitGroup
	labels := map[string]string{"os": "linux", "arch": "amd64", "platform": "linux/amd64"}
	started := time.Now()
	for i := range workers {
		wg.Go(func() {
			name := fmt.Sprintf("sim-%03d", i)
			wc := conns[i%len(conns)]
			if _, err := wc.Heartbeat(ctx, &workerv1.HeartbeatRequest{Worker: name, Labels: labels, Capacity: 1, Protocol: 1, StartedAt: timestamppb.Now()}); err != nil {
				fail(fmt.Errorf("%s: heartbeat: %w", name, err))
				return
			}
			for ctx.Err() == nil {
				t0 := time.Now()
				lr, err := wc.Lease(ctx, &workerv1.LeaseRequest{Worker: name, Labels: labels, Wait: durationpb.New(2 * time.Second)})
				if err != nil {
					if ctx.Err() == nil {
						fail(fmt.Errorf("%s: lease: %w", name, err))
					}
					return
				}
				a := lr.GetAssignment()
				if a == nil {
					continue
				}
				lat := time.Since(t0)
				cl := a.GetClaim()
				key := cl.GetNamespace() + "/" + cl.GetRun() + "/" + cl.GetJob()
				mu.Lock()
				res.leaseLat = append(res.leaseLat, lat)
				res.leased[key]++
				res.perWork[name]++
				if res.execs[cl.GetExecution()] {
					mu.Unlock()
					fail(fmt.Errorf("execution %s of %s handed out twice", cl.GetExecution(), key))
					return
				}
				res.execs[cl.GetExecution()] = true
				mu.Unlock()
				// Renew every quarter of the lease while the job is
				// reported, as a worker does.
				renewDone := make(chan struct{})
				renewed := make(chan error, 1)
				go func() {
					tick := time.NewTicker(a.GetLeaseTtl().AsDuration() / 4)
					defer tick.Stop()
					for {
						select {
						case <-renewDone:
							renewed <- nil
							return
						case <-tick.C:
							if _, err := wc.Renew(ctx, &workerv1.RenewRequest{Claim: cl}); err != nil && ctx.Err() == nil {
								renewed <- fmt.Errorf("%s: renew %s: %w", name, key, err)
								return
							}
						}
					}
				}()
				err = reportJob(ctx, wc, cl, a, key, name)
				close(renewDone)
				rerr := <-renewed
				if status.Code(errors.Unwrap(err)) == codes.Aborted {
					// The lease passed to another execution (the server
					// was too slow to answer within it): the job is
					// stopped here, as a worker stops it, and runs again
					// elsewhere. Its reports were refused by the fence.
					mu.Lock()
					res.lost++
					mu.Unlock()
					continue
				}
				if err != nil {
					fail(errors.Join(err, rerr))
					return
				}
				mu.Lock()
				res.finished[key]++
				mu.Unlock()
				// A renewal that crossed the Finish finds the item acked
				// (not found); any other failure to renew is the
				// server's.
				if rerr != nil && status.Code(errors.Unwrap(rerr)) != codes.NotFound {
					fail(rerr)
					return
				}
			}
		})
	}

	// Wait for the runs to end.
	deadline := time.Now().Add(10 * time.Minute)
	for _, n := range names {
		for ctx.Err() == nil {
			run, err := c.GetRun(ctx, "default", n)
			if err != nil {
				fail(err)
				break
			}
			if run.Status.Terminal() {
				if run.Status != resource.StatusSuccess {
					fail(fmt.Errorf("run %s ended %s: %s", n, run.Status, run.Reason))
				}
				break
			}
			if time.Now().After(deadline) {
				fail(fmt.Errorf("run %s still %s after 10 minutes", n, run.Status))
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	res.elapsed = time.Since(started)
	cancel()
	wg.Wait()
	if failed != nil {
		tb.Fatal(failed)
	}
	res.jobs = runs * jobsPer
	return res
}

// reportJob reports a simulated job's actions running then succeeded,
// and its success.
func reportJob(ctx context.Context, wc workerv1.WorkerServiceClient, cl *workerv1.Claim, a *workerv1.Assignment, key, name string) error {
	for _, act := range a.GetJob().GetActions() {
		for _, st := range []resource.Status{resource.StatusRunning, resource.StatusSuccess} {
			if _, err := wc.RecordAction(ctx, &workerv1.RecordActionRequest{Claim: cl, Action: act.GetName(), Status: string(st)}); err != nil {
				return fmt.Errorf("%s: record %s of %s: %w", name, act.GetName(), key, err)
			}
		}
	}
	if _, err := wc.Finish(ctx, &workerv1.FinishRequest{Claim: cl, Outcome: &workerv1.Outcome{Status: string(resource.StatusSuccess)}}); err != nil {
		return fmt.Errorf("%s: finish %s: %w", name, key, err)
	}
	return nil
}

// check fails tb unless every job ended through exactly one execution:
// an execution whose lease passed to another (under overload) had its
// reports refused, and only the other's count.
func (r simResult) check(tb testing.TB) {
	tb.Helper()
	if len(r.finished) != r.jobs {
		tb.Fatalf("%d jobs were finished by a worker, want %d", len(r.finished), r.jobs)
	}
	for k, n := range r.finished {
		if n != 1 {
			tb.Fatalf("job %s was finished by %d executions", k, n)
		}
	}
	releases := 0
	for _, n := range r.leased {
		releases += n - 1
	}
	if releases != r.lost {
		tb.Fatalf("%d jobs were leased again but %d executions lost their lease", releases, r.lost)
	}
}

// fairness is Jain's index of the jobs per worker over the workers that
// could lease (1 when all ran as many, 1/n when one ran them all).
func (r simResult) fairness(workers int) float64 {
	var sum, sq float64
	for i := range workers {
		x := float64(r.perWork[fmt.Sprintf("sim-%03d", i)])
		sum += x
		sq += x * x
	}
	if sq == 0 {
		return 0
	}
	return sum * sum / (float64(workers) * sq)
}

func simFleet(tb testing.TB) ([]replica, []string) {
	fleet, addrs := pgFleetAddrs(tb, 3, "--no-worker")
	return fleet, addrs
}

// TestSimulatedWorkersLeaseEachJobOnce: 200 simulated workers lease the
// jobs of three replicas on one PostgreSQL database: every job is leased
// once, by one worker, and every run succeeds.
func TestSimulatedWorkersLeaseEachJobOnce(t *testing.T) {
	if os.Getenv("PALVELLA_BIN") == "" {
		t.Fatal("PALVELLA_BIN is not set: run through `make test`, which builds bin/palvella first")
	}
	fleet, addrs := simFleet(t)
	res := simulate(t, fleet, addrs, 200, 8, 50)
	res.check(t)
	t.Logf("%d jobs by 200 workers in %s; %d workers ran at least one; fairness %.2f; %d leases lost to slowness", res.jobs, res.elapsed.Round(time.Millisecond), len(res.perWork), res.fairness(200), res.lost)
}

// BenchmarkSimulatedWorkers200 is the same load, measured: lease latency
// (a Lease call to its assignment, while jobs wait), jobs per second
// through the three replicas, and Jain's fairness index of the jobs per
// worker. Each iteration is 20 runs of 50 jobs.
func BenchmarkSimulatedWorkers200(b *testing.B) {
	fleet, addrs := simFleet(b)
	var all simResult
	var total time.Duration
	jobs := 0
	var fair []float64
	lost := 0
	for b.Loop() {
		res := simulate(b, fleet, addrs, 200, 20, 50)
		res.check(b)
		all.leaseLat = append(all.leaseLat, res.leaseLat...)
		total += res.elapsed
		jobs += res.jobs
		fair = append(fair, res.fairness(200))
		lost += res.lost
	}
	all.leaseLat.report(b)
	b.ReportMetric(float64(jobs)/total.Seconds(), "jobs/s")
	sort.Float64s(fair)
	b.ReportMetric(fair[len(fair)/2], "fairness")
	b.ReportMetric(float64(lost), "leases-lost")
}
