package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugins/engine/kubernetes/k8stest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// testdata/kubelet holds the pod statuses kwok cannot produce, written
// as the kubelet reports them (its reason strings: ImagePullBackOff,
// OOMKilled, Evicted). The statuses kwok does produce are read from the
// test control plane's apiserver, raw, in
// TestStateOfTheAPIServersPodStatuses_KwokNoRealContainer.

func readPod(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	if err := json.Unmarshal(b, &pod); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &pod
}

func TestStateOfKubeletStatuses(t *testing.T) {
	for _, tc := range []struct {
		file string
		want podState
		note string // a part of the note, if any
	}{
		{"kubelet/image-pull-backoff.json", podState{broken: "ImagePullBackOff: Back-off pulling image \"registry.invalid/nope:1\""}, ""},
		{"kubelet/oom-killed.json", podState{started: true, done: true, exitCode: 137}, "ran out of memory"},
		{"kubelet/evicted.json", podState{done: true, exitCode: 137}, "failed before its command ended: Evicted"},
		{"kubelet/files-in-failed.json", podState{done: true, exitCode: 1}, "copying the files in failed"},
	} {
		checkState(t, tc.file, readPod(t, tc.file), tc.want, tc.note)
	}
}

func checkState(t *testing.T, what string, pod *corev1.Pod, want podState, wantNote string) {
	t.Helper()
	got := stateOf(pod)
	note := got.note
	got.note = ""
	if got != want {
		t.Errorf("%s: %+v, want %+v", what, got, want)
	}
	if (wantNote == "") != (note == "") || !strings.Contains(note, wantNote) {
		t.Errorf("%s: note %q, want one with %q", what, note, wantNote)
	}
}

// The pod statuses the engine acts on, as the real apiserver sends them
// (raw JSON, decoded as the watch decodes it): pending, unschedulable,
// running, ended with 0 and with 3. And the log body the apiserver serves
// for a container, replayed to the engine's log reader through client-go:
// it reaches the output function whole, as stdout; an output function
// that fails stops the reading with its error; a log that cannot be read
// is said on stderr.
func TestStateOfTheAPIServersPodStatuses_KwokNoRealContainer(t *testing.T) {
	c := k8stest.Shared(t)
	ns := c.Namespace(t)
	cs := clientset(t)
	ctx := context.Background()
	raw := func(name string) *corev1.Pod {
		b, err := cs.CoreV1().RESTClient().Get().Namespace(ns).Resource("pods").Name(name).DoRaw(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var pod corev1.Pod
		if err := json.Unmarshal(b, &pod); err != nil {
			t.Fatalf("pod %s as the apiserver sends it: %v\n%s", name, err, b)
		}
		return &pod
	}
	// mk creates a pod and returns it as the apiserver answered the
	// create (raw JSON): before the scheduler saw it, which a read after
	// the create cannot be sure of.
	mk := func(name string, annotations, selector map[string]string) *corev1.Pod {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, NodeSelector: selector,
				Containers: []corev1.Container{{Name: commandContainer, Image: testImage, Command: []string{"sh", "-c", "exit 3"}}}}}
		body, err := json.Marshal(pod)
		if err != nil {
			t.Fatal(err)
		}
		b, err := cs.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").Body(body).DoRaw(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var created corev1.Pod
		if err := json.Unmarshal(b, &created); err != nil {
			t.Fatalf("pod %s as the apiserver created it: %v\n%s", name, err, b)
		}
		return &created
	}
	created := mk("unschedulable", nil, map[string]string{"palvella.dev/pool": "gpu"})
	checkState(t, "pod as created", created, podState{}, "")
	waitPodNamed(t, cs, ns, "unschedulable", func(p *corev1.Pod) bool {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Reason == corev1.PodReasonUnschedulable {
				return true
			}
		}
		return false
	})
	checkState(t, "unschedulable pod", raw("unschedulable"), podState{}, "waits for a node: 0/2 nodes are available")
	mk("running", nil, nil)
	waitPodNamed(t, cs, ns, "running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	checkState(t, "running pod", raw("running"), podState{started: true}, "")
	for code, want := range map[string]int{"0": 0, "3": 3} {
		mk("exit-"+code, map[string]string{k8stest.ExitCodeKey: code}, nil)
		waitPodNamed(t, cs, ns, "exit-"+code, func(p *corev1.Pod) bool {
			return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
		})
		checkState(t, "pod ended with "+code, raw("exit-"+code), podState{started: true, done: true, exitCode: want}, "")
	}

	body, err := cs.CoreV1().Pods(ns).GetLogs("running", &corev1.PodLogOptions{Container: commandContainer}).DoRaw(ctx)
	if err != nil || string(body) != k8stest.LogsText {
		t.Fatalf("the apiserver's log body: %v %q", err, body)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/namespaces/ns/pods/p/log" || r.URL.Query().Get("follow") != "true" || r.URL.Query().Get("container") != commandContainer {
			http.Error(w, "unexpected request "+r.URL.String(), http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	}))
	defer srv.Close()
	local := kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL})
	var out bytes.Buffer
	err = streamLog(ctx, local, "ns", "p", func(stream string, b []byte) error {
		if stream != engine.Stdout {
			t.Errorf("log chunk on %s", stream)
		}
		out.Write(b)
		return nil
	})
	if err != nil || !bytes.Equal(out.Bytes(), body) {
		t.Fatalf("streamLog: %v, output %q, want %q", err, out.String(), body)
	}
	boom := errors.New("boom")
	err = streamLog(ctx, local, "ns", "p", func(string, []byte) error { return boom })
	var oe outputError
	if !errors.As(err, &oe) || !errors.Is(oe.err, boom) {
		t.Fatalf("streamLog with a failing output: %v", err)
	}
	var errOut bytes.Buffer
	err = streamLog(ctx, local, "ns", "other", func(stream string, b []byte) error {
		if stream == engine.Stderr {
			errOut.Write(b)
		}
		return nil
	})
	if err != nil || !strings.Contains(errOut.String(), "the pod's log cannot be read") {
		t.Fatalf("unreadable log: %v, stderr %q", err, errOut.String())
	}
}

func waitPodNamed(t *testing.T, cs kubernetes.Interface, ns, name string, cond func(*corev1.Pod) bool) {
	t.Helper()
	waitPodWith(t, cs, ns, metav1.ListOptions{FieldSelector: "metadata.name=" + name}, cond)
}
