//go:build unix

package docker

import (
	"cmp"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
	"github.com/palvella/palvella/plugins/engine/docker/dockertest"
)

// A host that freezes (a worker or server stopped with SIGSTOP, a paused
// machine) cannot renew its job's lease. The engine notices within its
// keepalive (engine.HostKeepalive) and stops the host's command before the
// lease could pass the job to another worker: a command of the job's
// image, run in the job's container, has its processes killed; one in
// another image has its own container stopped.
func TestFrozenHostHasItsCommandStopped(t *testing.T) {
	d := dockertest.Shared(t)
	c := testClient(t)
	other := "palvella-test/busybox:frozen"
	if _, err := c.ImageTag(context.Background(), client.ImageTagOptions{Source: dockertest.Image, Target: other}); err != nil {
		t.Fatal(err)
	}
	for _, image := range []string{"", other} {
		t.Run("image="+cmp.Or(image, "job's"), func(t *testing.T) {
			h := sdktest.StartEngineHost(t, sdktest.EngineHostSpec{
				Path:   os.Args[0],
				Env:    []string{serveEnv + "=1"},
				Config: map[string]any{"host": d.Host, "image": dockertest.Image, "kill_grace": "1s", "state_dir": stateDir(t)},
				Setup:  engine.SetupRequest{Job: "frozen"},
				Exec:   engine.ExecRequest{Image: image, Script: "echo ready; sleep 613"},
				Ready:  "ready",
			})
			// running lists the command's sleep in the workspace's running
			// containers, and the command's own container while it runs.
			running := func() ([]string, error) {
				ctx := context.Background()
				f := client.Filters{}.Add("label", labelWorkspace+"="+h.Workspace.ID).Add("status", "running")
				cs, err := c.ContainerList(ctx, client.ContainerListOptions{Filters: f})
				if err != nil {
					return nil, err
				}
				var found []string
				for _, x := range cs.Items {
					if x.Labels[labelRole] == "command" {
						found = append(found, x.ID[:12]+": the command's container")
					}
					top, err := c.ContainerTop(ctx, x.ID, client.ContainerTopOptions{})
					if err != nil {
						// A container that stops while it is listed.
						ins, ierr := c.ContainerInspect(ctx, x.ID, client.ContainerInspectOptions{})
						if cerrdefs.IsNotFound(ierr) || (ierr == nil && !ins.Container.State.Running) {
							continue
						}
						return nil, err
					}
					for _, p := range top.Processes {
						if len(p) > 0 && p[len(p)-1] == "sleep 613" {
							found = append(found, x.ID[:12]+": "+strings.Join(p, " "))
						}
					}
				}
				return found, nil
			}
			// "ready" comes before the sleep has started.
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				l, err := running()
				if err == nil && len(l) == map[string]int{"": 1, other: 2}[image] {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("before the freeze, the command: %v %v; want its sleep (and its container)", l, err)
				}
			}

			frozen := h.Freeze()
			took := h.WaitStopped(frozen, running)
			t.Logf("the command stopped %s after its host froze", took.Round(time.Millisecond))

			// Woken, the host finds its Exec failed: the engine dropped
			// the connection.
			h.Thaw()
			if res, errText := h.Result(time.Minute); res != nil || errText == "" {
				t.Errorf("the woken host's Exec: result %+v, error %q; want an error", res, errText)
			}
		})
	}
}
