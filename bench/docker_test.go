package bench

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugins/engine/docker"
	"github.com/palvella/palvella/plugins/engine/docker/dockertest"
)

// dockerBench is a daemon started for a benchmark, with what the
// benchmarks time on it.
type dockerBench struct {
	b   *testing.B
	d   *dockertest.Daemon
	c   *client.Client
	ctx context.Context
	// bareNetwork is the bare runs' network: none, or against jobs with
	// a network of their own a bridge made once, as `docker run --rm`
	// joins the default bridge (the benchmark's daemon has none).
	bareNetwork string
}

// bareBridge is the bridge network of the bare runs compared with jobs
// that have a network of their own.
const bareBridge = "palvella-bench-bridge"

// bareNetworkFor is the bare runs' network against jobs on network.
func bareNetworkFor(network string) string {
	if network == "job" {
		return bareBridge
	}
	return network
}

// startDocker starts a daemon of its own for b, or skips b saying why.
func startDocker(b *testing.B) *dockerBench {
	d, err := dockertest.Start()
	if err != nil {
		b.Skipf("docker part skipped: no Docker daemon could start: %v", err)
	}
	b.Cleanup(func() { d.Stop() })
	c, err := d.Client()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	if _, err := c.NetworkCreate(context.Background(), bareBridge, client.NetworkCreateOptions{Driver: "bridge"}); err != nil {
		b.Fatal(err)
	}
	return &dockerBench{b: b, d: d, c: c, ctx: context.Background()}
}

// bare runs `true` in a container of the image through the API the way
// `docker run --rm` does: create, attach, start, wait, remove.
func (db *dockerBench) bare() {
	b, c, ctx := db.b, db.c, db.ctx
	cr, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: dockertest.Image, Cmd: []string{"true"}, AttachStdout: true, AttachStderr: true},
		HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(db.bareNetwork)},
	})
	if err != nil {
		b.Fatal(err)
	}
	att, err := c.ContainerAttach(ctx, cr.ID, client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		b.Fatal(err)
	}
	wait := c.ContainerWait(ctx, cr.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := c.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, att.Reader)
	att.Close()
	select {
	case <-wait.Result:
	case err := <-wait.Error:
		b.Fatal(err)
	}
	if _, err := c.ContainerRemove(ctx, cr.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
		b.Fatal(err)
	}
}

// engine configures a docker engine on the daemon with the given network.
func (db *dockerBench) engine(network string) *docker.Plugin {
	p := docker.New()
	resp, err := p.Configure(db.ctx, &sdk.ConfigureRequest{Config: map[string]any{
		"host": db.d.Host, "image": dockertest.Image, "network": network, "state_dir": db.b.TempDir()}})
	if err != nil || sdk.HasErrors(resp.Diagnostics) {
		db.b.Fatalf("Configure: %v %v", err, resp)
	}
	return p
}

// job runs one trivial job on p: Setup, one `true` command, Teardown.
func (db *dockerBench) job(p *docker.Plugin) {
	b, ctx := db.b, db.ctx
	ws, err := p.Setup(ctx, &engine.SetupRequest{Job: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	res, err := p.Exec(ctx, &engine.ExecRequest{WorkspaceID: ws.ID, Command: []string{"true"}}, nil)
	if err != nil || res.ExitCode != 0 {
		b.Fatalf("Exec: %v %+v", err, res)
	}
	if err := p.Teardown(ctx, ws.ID); err != nil {
		b.Fatal(err)
	}
}

// drain waits until p has removed the workspaces torn down so far (Teardown
// leaves that to the background) and returns how long that took.
func (db *dockerBench) drain(p *docker.Plugin) time.Duration {
	start := time.Now()
	ctx, cancel := context.WithTimeout(db.ctx, 5*time.Minute)
	defer cancel()
	if err := p.Drain(ctx); err != nil {
		db.b.Fatal(err)
	}
	return time.Since(start)
}

// BenchmarkDockerOneJob times one trivial job on the docker engine (Setup,
// one `true` command, Teardown) against a bare container run of the same
// image through the same API (create, attach, start, wait, remove: what
// `docker run --rm` does; with no network against jobs with none, on a
// bridge against jobs with a network of their own), in the same run on
// the same daemon, and reports
// both and their ratio. Teardown leaves the removal of the job's container,
// network and volume to the background: the time until that is done is
// reported too (drain-ms), and the ratio with it counted (ratio-drained);
// it is waited for before the next bare run. Without a daemon that can
// start it is skipped, saying why.
func BenchmarkDockerOneJob(b *testing.B) {
	db := startDocker(b)
	for _, network := range []string{"none", "job"} {
		p := db.engine(network)
		b.Run("network="+network, func(b *testing.B) {
			db.b, db.bareNetwork = b, bareNetworkFor(network)
			db.bare()
			db.job(p)
			db.drain(p)
			var tBare, tJob, tDrain time.Duration
			for b.Loop() {
				start := time.Now()
				db.bare()
				tBare += time.Since(start)
				start = time.Now()
				db.job(p)
				tJob += time.Since(start)
				tDrain += db.drain(p)
			}
			n := float64(b.N)
			b.ReportMetric(float64(tBare.Milliseconds())/n, "bare-ms/op")
			b.ReportMetric(float64(tJob.Milliseconds())/n, "job-ms/op")
			b.ReportMetric(float64(tDrain.Milliseconds())/n, "drain-ms/op")
			b.ReportMetric(float64(tJob)/float64(tBare), "ratio")
			b.ReportMetric(float64(tJob+tDrain)/float64(tBare), "ratio-drained")
			b.ReportMetric(float64((tJob-tBare).Milliseconds())/n, "extra-ms/op")
		})
	}
}

// BenchmarkDockerTenJobs times ten trivial jobs run one after the other on
// the docker engine against ten bare container runs of the same image one
// after the other, in the same run on the same daemon, and reports the ten
// jobs in bare runs (x-bare; the target: ten jobs within 10x of one
// bare run). The baseline is ten bare runs, not one, so that both sides
// are as many container lifecycles over as long a stretch of the
// machine's load. The removal of the last job's workspace, left to the
// background, is reported (drain-ms) and counted in x-bare-drained.
// Skipped, saying why, without a daemon.
func BenchmarkDockerTenJobs(b *testing.B) {
	db := startDocker(b)
	for _, network := range []string{"none", "job"} {
		p := db.engine(network)
		b.Run("network="+network, func(b *testing.B) {
			db.b, db.bareNetwork = b, bareNetworkFor(network)
			db.bare()
			db.job(p)
			db.drain(p)
			var tBare, tTen, tDrain time.Duration
			for b.Loop() {
				start := time.Now()
				for range 10 {
					db.bare()
				}
				tBare += time.Since(start)
				start = time.Now()
				for range 10 {
					db.job(p)
				}
				tTen += time.Since(start)
				tDrain += db.drain(p)
			}
			n := float64(b.N)
			b.ReportMetric(float64(tBare.Milliseconds())/n/10, "bare-ms/op")
			b.ReportMetric(float64(tTen.Milliseconds())/n, "ten-jobs-ms/op")
			b.ReportMetric(float64(tDrain.Milliseconds())/n, "drain-ms/op")
			b.ReportMetric(float64(tTen)/(float64(tBare)/10), "x-bare")
			b.ReportMetric(float64(tTen+tDrain)/(float64(tBare)/10), "x-bare-drained")
		})
	}
}
