package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palvella/palvella/core/config"
	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/plugins/engine/kubernetes/k8stest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// A server whose configuration names a kubernetes engine with setup and
// teardown actions runs a job on it: the engine's setup action, the job's
// action and the teardown action each become a pod of the engine's image
// in its namespace, in that order, each pod's log is the action's log, and
// nothing of the job is left in the namespace afterwards. kwok runs no
// container (the log is kwok's line, the exit code the one the engine's
// annotation asks kwok for), hence the name.
func TestKubernetesEngineSetupTeardownActions_KwokNoRealContainer(t *testing.T) {
	c, err := k8stest.Start()
	if err != nil {
		t.Fatalf("k8stest: %v", err)
	}
	t.Cleanup(c.Stop)
	ns := c.Namespace(t)
	cs, err := c.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Every pod the engine makes, in order: its command's script.
	var mu sync.Mutex
	var scripts []string
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: "palvella.dev/engine=kubernetes"})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for e := range w.ResultChan() {
			if pod, ok := e.Object.(*corev1.Pod); ok && e.Type == watch.Added {
				cmd := pod.Spec.Containers[0].Command
				script := cmd[len(cmd)-1]
				// A run action with the default shell prepares its outputs
				// file on the script's first line.
				if _, after, ok := strings.Cut(script, `|| exit 125; `); ok {
					script = after
				}
				mu.Lock()
				scripts = append(scripts, script)
				mu.Unlock()
			}
		}
	}()

	home := t.TempDir()
	conf := configHead + `plugins:
  engine-kubernetes:
    config: {kubeconfig: ` + c.Kubeconfig + `, namespace: ` + ns + `}
engines:
  - name: local
    type: local
    default: true
  - name: pods
    type: kubernetes
    kubeconfig: ` + c.Kubeconfig + `
    namespace: ` + ns + `
    image: registry.invalid/palvella-test/busybox:1
    annotations: {"` + k8stest.ExitCodeKey + `": "0"}
    setup:
      actions:
        - name: prepare
          run: echo prepare
    teardown:
      actions:
        - name: clean
          run: echo clean
`
	if err := os.WriteFile(filepath.Join(home, config.FileName), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, home)
	pipeline := filepath.Join(t.TempDir(), "podded.yaml")
	if err := os.WriteFile(pipeline, []byte(`apiVersion: palvella.dev/v1
kind: Pipeline
metadata: {name: podded}
spec:
  jobs:
    - name: make
      engine: pods
      actions:
        - name: build
          run: echo build
`), 0o600); err != nil {
		t.Fatal(err)
	}
	s.mustCLI("pipeline", "apply", "-f", pipeline)
	s.mustCLI("pipeline", "run", "podded", "--wait")
	r := s.run("podded-1")
	if r.Status != resource.StatusSuccess {
		t.Fatalf("run podded-1 is %s:\n%s\n%s", r.Status, s.mustCLI("run", "get", "podded-1"), s.logTail())
	}
	for _, a := range []string{"setup:prepare", "build", "teardown:clean"} {
		if st := actionOf(t, r, "make", a).Status; st != resource.StatusSuccess {
			t.Errorf("make/%s = %s", a, st)
		}
	}
	mu.Lock()
	got := slices.Clone(scripts)
	mu.Unlock()
	// Each run action is a pod of its script, then (kwok runs no
	// container, so the outputs file does not come back at the end of the
	// command's log) a pod that reads the outputs file.
	if want := []string{"echo prepare", ".palvella-outputs", "echo build", ".palvella-outputs", "echo clean", ".palvella-outputs"}; !slices.Equal(got, want) {
		t.Errorf("pods made, by their scripts: %q, want %q", got, want)
	}
	var logs []string
	s.runLogs("podded-1", func(l storedLine) { logs = append(logs, l.text) })
	if n := strings.Count(strings.Join(logs, "\n"), strings.TrimSpace(k8stest.LogsText)); n != 3 {
		t.Errorf("the run's logs have the pods' log %d times, want 3 (one per action):\n%s", n, strings.Join(logs, "\n"))
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		opts := metav1.ListOptions{LabelSelector: "palvella.dev/engine=kubernetes,palvella.dev/role!=engine"}
		pods, err1 := cs.CoreV1().Pods(ns).List(ctx, opts)
		secrets, err2 := cs.CoreV1().Secrets(ns).List(ctx, opts)
		cms, err3 := cs.CoreV1().ConfigMaps(ns).List(ctx, opts)
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		if len(pods.Items)+len(secrets.Items)+len(cms.Items) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("left in namespace %s: %d pods, %d Secrets, %d ConfigMaps", ns, len(pods.Items), len(secrets.Items), len(cms.Items))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
