package nomad

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugins/engine/docker/dockertest"
	"github.com/palvella/palvella/plugins/engine/nomad/nomadtest"
)

// With the docker driver, a job's commands run in the container of its
// Nomad task, from the job's image, on a real Docker daemon that Nomad's
// docker driver uses; Teardown leaves no container there.
func TestDockerDriverRunsInTheJobsContainer(t *testing.T) {
	d, err := dockertest.Start()
	if err != nil {
		t.Fatalf("dockertest: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("dockertest: %v", err)
		}
	})
	a := nomadtest.StartT(t, nomadtest.Options{DockerHost: d.Host})
	p := newEngine(t, a, map[string]any{"driver": "docker", "image": dockertest.Image, "network_mode": "none"})
	ctx := context.Background()
	ws := setup(t, p, map[string]any{"environ": map[string]any{"WHERE": "box"}})

	res, out, errOut := execText(t, p, &engine.ExecRequest{WorkspaceID: ws.ID,
		FilesIn:  []engine.File{{Path: "in.txt", Content: []byte("from the server\n")}},
		Script:   `test -f /.dockerenv && echo "in a container at $(pwd) ($WHERE)"; cat in.txt; ls /sys/class/net | tr '\n' ' '; echo; echo made > out.txt; exit 4`,
		FilesOut: []string{"out.txt"}})
	want := "in a container at " + ws.Workdir + " (box)\nfrom the server\nlo \n"
	if res.ExitCode != 4 || out != want {
		t.Fatalf("exit %d, stdout %q, stderr %q; want exit 4 and %q", res.ExitCode, out, errOut, want)
	}
	if len(res.FilesOut) != 1 || string(res.FilesOut[0].Content) != "made\n" {
		t.Fatalf("files out: %+v", res.FilesOut)
	}

	dc, err := d.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	containers := func() int {
		cs, err := dc.ContainerList(ctx, client.ContainerListOptions{All: true})
		if err != nil {
			t.Fatal(err)
		}
		return len(cs.Items)
	}
	if n := containers(); n != 1 {
		t.Fatalf("containers on the daemon while the job runs: %d, want its one task", n)
	}
	if err := p.Teardown(ctx, ws.ID); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	for deadline := time.Now().Add(30 * time.Second); containers() != 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("containers on the daemon after Teardown: %d, want none", containers())
		}
	}
	waitNoJobs(t, a, p.Owner())
}
