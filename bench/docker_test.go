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

// BenchmarkDockerOneJob times one trivial job on the docker engine (Setup,
// one `true` command, Teardown) against a bare container run of the same
// image through the same API (create, attach, start, wait, remove: what
// `docker run --rm` does), in the same run on the same daemon, and reports
// both and their ratio. Without a daemon that can start it is skipped,
// saying why.
func BenchmarkDockerOneJob(b *testing.B) {
	d, err := dockertest.Start()
	if err != nil {
		b.Skipf("docker part skipped: no Docker daemon could start: %v", err)
	}
	defer d.Stop()
	c, err := d.Client()
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	bare := func() {
		cr, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config:     &container.Config{Image: dockertest.Image, Cmd: []string{"true"}, AttachStdout: true, AttachStderr: true},
			HostConfig: &container.HostConfig{NetworkMode: "none"},
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

	for _, network := range []string{"none", "job"} {
		p := docker.New()
		resp, err := p.Configure(ctx, &sdk.ConfigureRequest{Config: map[string]any{
			"host": d.Host, "image": dockertest.Image, "network": network, "state_dir": b.TempDir()}})
		if err != nil || sdk.HasErrors(resp.Diagnostics) {
			b.Fatalf("Configure: %v %v", err, resp)
		}
		job := func() {
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
		b.Run("network="+network, func(b *testing.B) {
			bare()
			job()
			var tBare, tJob time.Duration
			for b.Loop() {
				start := time.Now()
				bare()
				tBare += time.Since(start)
				start = time.Now()
				job()
				tJob += time.Since(start)
			}
			n := float64(b.N)
			b.ReportMetric(float64(tBare.Milliseconds())/n, "bare-ms/op")
			b.ReportMetric(float64(tJob.Milliseconds())/n, "job-ms/op")
			b.ReportMetric(float64(tJob)/float64(tBare), "ratio")
			b.ReportMetric(float64((tJob-tBare).Milliseconds())/n, "extra-ms/op")
		})
	}
}
