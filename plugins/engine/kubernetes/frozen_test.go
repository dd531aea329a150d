//go:build unix

package kubernetes

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
	"github.com/palvella/palvella/plugins/engine/kubernetes/k8stest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A host that freezes (a worker or server stopped with SIGSTOP, a paused
// machine) cannot renew its job's lease. The engine notices within its
// keepalive (engine.HostKeepalive) and deletes the host's command's pod
// before the lease could pass the job to another worker. kwok runs no
// container: the pod's deletion (its deletionTimestamp, then its removal)
// is what the test sees.
func TestFrozenHostHasItsPodDeleted_KwokNoRealContainer(t *testing.T) {
	c := k8stest.Shared(t)
	ns := c.Namespace(t)
	cs := clientset(t)
	h := sdktest.StartEngineHost(t, sdktest.EngineHostSpec{
		Path: os.Args[0],
		Env:  []string{serveEnv + "=1"},
		Config: map[string]any{"kubeconfig": c.Kubeconfig, "namespace": ns, "image": testImage, "kill_grace": "1s", "lease_duration": "2s",
			"tolerations": []any{map[string]any{"operator": "Exists"}}},
		Setup: engine.SetupRequest{Namespace: "default", Pipeline: "p", Run: "p-1", Job: "frozen"},
		Exec:  engine.ExecRequest{Script: "sleep 600"},
	})
	selector := labelWorkspace + "=" + h.Workspace.ID + "," + labelRole + "=command"
	waitPodWith(t, cs, ns, metav1.ListOptions{LabelSelector: selector}, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	// pods lists the command's pods that are not being deleted.
	pods := func(deleting bool) func() ([]string, error) {
		return func() ([]string, error) {
			l, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
			if err != nil {
				return nil, err
			}
			var out []string
			for _, p := range l.Items {
				if deleting || p.DeletionTimestamp == nil {
					out = append(out, p.Name+" "+string(p.Status.Phase))
				}
			}
			return out, nil
		}
	}

	frozen := h.Freeze()
	took := h.WaitStopped(frozen, pods(false))
	t.Logf("the command's pod was being deleted %s after its host froze", took.Round(time.Millisecond))
	gone := h.WaitStopped(frozen, pods(true))
	t.Logf("the command's pod was gone %s after its host froze", gone.Round(time.Millisecond))
	waitNone(t, cs, ns, selector, "the command's pod and Secret after its host froze")

	// Woken, the host finds its Exec failed: the engine dropped the
	// connection.
	h.Thaw()
	if res, errText := h.Result(time.Minute); res != nil || errText == "" {
		t.Errorf("the woken host's Exec: result %+v, error %q; want an error", res, errText)
	}
}
