package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
	"github.com/palvella/palvella/plugins/engine/kubernetes/k8stest"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Tests whose name ends in _KwokNoRealContainer run against the real
// control plane with kwok's simulated node: pods are created, scheduled,
// run and end, and the log comes through the apiserver from kwok's
// kubelet server, but no container runs, so the output is kwok's line and
// the exit code the one the test's annotation asks kwok for.

// serveEnv makes the test binary serve the plugin instead of running
// tests, so a test can start it as a real plugin process (and kill it).
const serveEnv = "PALVELLA_TEST_SERVE_ENGINE_KUBERNETES"

func TestMain(m *testing.M) {
	sdktest.EngineHostMain()
	if os.Getenv(serveEnv) == "1" {
		os.Exit(Serve())
	}
	k8stest.Main(m)
}

const testImage = "registry.invalid/palvella-test/busybox:1"

// newEngine returns an engine on the test cluster, in namespace ns.
func newEngine(t testing.TB, ns string, extra map[string]any) *Plugin {
	t.Helper()
	c := k8stest.Shared(t)
	cfg := map[string]any{"kubeconfig": c.Kubeconfig, "namespace": ns, "image": testImage, "kill_grace": "1s", "lease_duration": "2s"}
	for k, v := range extra {
		cfg[k] = v
	}
	p := New()
	resp, err := p.Configure(context.Background(), &sdk.ConfigureRequest{Config: cfg})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if len(resp.Diagnostics) > 0 {
		t.Fatalf("Configure: %v", resp.Diagnostics)
	}
	return p
}

func clientset(t testing.TB) *kubernetes.Clientset {
	t.Helper()
	cs, err := k8stest.Shared(t).Clientset()
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func setup(t *testing.T, p *Plugin, opts map[string]any) *engine.Workspace {
	t.Helper()
	ws, err := p.Setup(context.Background(), &engine.SetupRequest{Namespace: "default", Pipeline: "p", Run: "p-1", Job: "build", Options: opts})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() { p.Teardown(context.Background(), ws.ID) })
	return ws
}

func exitCode(code string) map[string]any {
	return map[string]any{"annotations": map[string]any{k8stest.ExitCodeKey: code}}
}

func execText(t *testing.T, p *Plugin, req *engine.ExecRequest) (*engine.ExecResult, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	res, err := p.Exec(context.Background(), req, func(s string, b []byte) error {
		if s == engine.Stdout {
			out.Write(b)
		} else {
			errOut.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Exec %q: %v", req.Script, err)
	}
	return res, out.String(), errOut.String()
}

// left lists what the engine made in ns with the given label selector:
// pods, Secrets, ConfigMaps, claims and Leases.
func left(t testing.TB, cs kubernetes.Interface, ns, selector string) []string {
	t.Helper()
	ctx := context.Background()
	opts := metav1.ListOptions{LabelSelector: selector}
	var out []string
	pods, err := cs.CoreV1().Pods(ns).List(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range pods.Items {
		out = append(out, "pod/"+x.Name)
	}
	secrets, err := cs.CoreV1().Secrets(ns).List(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range secrets.Items {
		out = append(out, "secret/"+x.Name)
	}
	cms, err := cs.CoreV1().ConfigMaps(ns).List(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range cms.Items {
		out = append(out, "configmap/"+x.Name)
	}
	pvcs, err := cs.CoreV1().PersistentVolumeClaims(ns).List(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range pvcs.Items {
		out = append(out, "pvc/"+x.Name)
	}
	leases, err := cs.CoordinationV1().Leases(ns).List(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range leases.Items {
		out = append(out, "lease/"+x.Name)
	}
	return out
}

func waitNone(t testing.TB, cs kubernetes.Interface, ns, selector, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		l := left(t, cs, ns, selector)
		if len(l) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: left in namespace %s: %v", what, ns, l)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestExitCodesAndLogThroughTheAPIServer_KwokNoRealContainer(t *testing.T) {
	ns := k8stest.Shared(t).Namespace(t)
	p := newEngine(t, ns, nil)
	for _, code := range []string{"0", "3", "137"} {
		ws := setup(t, p, exitCode(code))
		res, out, errOut := execText(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "echo hi; exit " + code})
		if want := map[string]int{"0": 0, "3": 3, "137": 137}[code]; res.ExitCode != want || res.TimedOut || res.Cancelled {
			t.Errorf("pod ending with %s: result %+v, want exit code %d (stderr %q)", code, res, want, errOut)
		}
		if out != k8stest.LogsText {
			t.Errorf("output %q, want the container's log as the apiserver serves it (%q)", out, k8stest.LogsText)
		}
	}
}

// waitPod waits for a pod of the workspace for which cond holds and
// returns it.
func waitPod(t *testing.T, cs kubernetes.Interface, ns, wsID string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	return waitPodWith(t, cs, ns, metav1.ListOptions{LabelSelector: labelWorkspace + "=" + wsID}, cond)
}

func waitPodWith(t *testing.T, cs kubernetes.Interface, ns string, opts metav1.ListOptions, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pods, err := cs.CoreV1().Pods(ns).List(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		for i := range pods.Items {
			if cond(&pods.Items[i]) {
				return &pods.Items[i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pod %v as expected: %d pods", opts, len(pods.Items))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The pod of a command has the job's parameters, lands on the tainted
// kwok node through its node selector and toleration, and holds no value
// of its environment: those are in a Secret made for the command, deleted
// with its pod when the command is cancelled.
func TestPodFromParamsEnvInASecretCancelDeletes_KwokNoRealContainer(t *testing.T) {
	c := k8stest.Shared(t)
	ns := c.Namespace(t)
	cs := clientset(t)
	ctx := context.Background()
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := newEngine(t, ns, map[string]any{"environ": map[string]any{"FROM_CONFIG": "c"}})
	ws := setup(t, p, map[string]any{
		"service_account": "builder",
		"environ":         map[string]any{"FROM_ENGINE": "e"},
		"resources":       map[string]any{"requests": map[string]any{"cpu": "250m", "memory": "64Mi"}, "limits": map[string]any{"memory": "128Mi"}},
		"node_selector":   map[string]any{"palvella.dev/pool": "ci"},
		"tolerations":     []any{map[string]any{"key": "palvella.dev/ci", "operator": "Equal", "value": "true", "effect": "NoSchedule"}},
		"labels":          map[string]any{"team": "ci"},
	})
	const token = "s3cret-token-value"
	done := make(chan *engine.ExecResult, 1)
	go func() {
		res, err := p.Exec(ctx, &engine.ExecRequest{WorkspaceID: ws.ID, ExecID: "build-1", Script: "make",
			Env: map[string]string{"TOKEN": token}, FilesIn: []engine.File{{Path: "dir/in.txt", Content: []byte("in"), Mode: 0o600}}}, nil)
		if err != nil {
			t.Errorf("Exec: %v", err)
		}
		done <- res
	}()
	pod := waitPod(t, cs, ns, ws.ID, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if pod.Spec.NodeName != k8stest.NodeName {
		t.Errorf("pod on node %q, want the tainted kwok node %s", pod.Spec.NodeName, k8stest.NodeName)
	}
	ctr := pod.Spec.Containers[0]
	if pod.Spec.ServiceAccountName != "builder" || pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken ||
		pod.Spec.RestartPolicy != corev1.RestartPolicyNever || pod.Labels["team"] != "ci" || pod.Labels[labelJob] != "build" ||
		ctr.Image != testImage || ctr.Resources.Requests.Cpu().String() != "250m" || ctr.Resources.Limits.Memory().String() != "128Mi" ||
		strings.Join(ctr.Command, " ") != "sh -e -c make" || ctr.WorkingDir != "/palvella/ws/"+ws.ID {
		t.Errorf("pod spec does not follow the parameters: sa %q, automount %v, labels %v, container %+v", pod.Spec.ServiceAccountName,
			pod.Spec.AutomountServiceAccountToken, pod.Labels, ctr)
	}
	if len(pod.OwnerReferences) != 1 || pod.OwnerReferences[0].Kind != "ConfigMap" {
		t.Errorf("pod owners %v, want the job's anchor", pod.OwnerReferences)
	}
	if len(pod.Spec.InitContainers) != 1 || pod.Spec.InitContainers[0].Image != testImage {
		t.Errorf("init containers %v, want one copying the files in", pod.Spec.InitContainers)
	}
	js, _ := json.Marshal(pod)
	if bytes.Contains(js, []byte(token)) {
		t.Fatalf("the pod's object holds the secret value")
	}
	secret, err := cs.CoreV1().Secrets(ns).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the command's Secret: %v", err)
	}
	got := map[string]string{}
	for _, e := range ctr.Env {
		if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != secret.Name {
			t.Errorf("variable %s is not from the command's Secret: %+v", e.Name, e)
			continue
		}
		got[e.Name] = string(secret.Data[e.ValueFrom.SecretKeyRef.Key])
	}
	if got["TOKEN"] != token || got["FROM_ENGINE"] != "e" || got["FROM_CONFIG"] != "c" {
		t.Errorf("environment through the Secret: %v", got)
	}
	if err := p.Cancel(ctx, ws.ID, "build-1"); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-done:
		if res == nil || !res.Cancelled || res.ExitCode == 0 {
			t.Fatalf("cancelled exec: %+v", res)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Exec did not return after Cancel")
	}
	waitNone(t, cs, ns, labelWorkspace+"="+ws.ID+","+labelRole+"=command", "after Cancel")
}

// A pod no node accepts (its node selector matches none) waits, saying
// why; its timeout deletes it; so does the caller going away.
func TestTimeoutAndCallerGoneDeleteThePod_KwokNoRealContainer(t *testing.T) {
	ns := k8stest.Shared(t).Namespace(t)
	cs := clientset(t)
	p := newEngine(t, ns, nil)
	ws := setup(t, p, map[string]any{"node_selector": map[string]any{"palvella.dev/pool": "gpu"}})
	start := time.Now()
	res, _, errOut := execText(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "sleep 60", Timeout: 3 * time.Second})
	if !res.TimedOut || res.ExitCode == 0 || time.Since(start) > 40*time.Second {
		t.Fatalf("timed out exec: %+v after %s", res, time.Since(start))
	}
	if !strings.Contains(errOut, "waits for a node") || !strings.Contains(errOut, "node affinity/selector") {
		t.Errorf("stderr %q does not say that the pod waits for a node and why", errOut)
	}
	waitNone(t, cs, ns, labelWorkspace+"="+ws.ID+","+labelRole+"=command", "after a timeout")

	ws2 := setup(t, p, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		waitPod(t, cs, ns, ws2.ID, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
		cancel()
	}()
	if _, err := p.Exec(ctx, &engine.ExecRequest{WorkspaceID: ws2.ID, Script: "sleep 60"}, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Exec whose context ended: %v", err)
	}
	waitNone(t, cs, ns, labelWorkspace+"="+ws2.ID+","+labelRole+"=command", "after the context ended")
}

// Teardown leaves nothing of the job: pods, Secrets, the anchor and the
// workspace's claim (bound here to a volume the test provides, as a
// cluster's provisioner would).
func TestTeardownLeavesNothing_KwokNoRealContainer(t *testing.T) {
	ns := k8stest.Shared(t).Namespace(t)
	cs := clientset(t)
	ctx := context.Background()
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: ns},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName:              ns,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + ns}},
		},
	}
	if _, err := cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{}) })
	p := newEngine(t, ns, nil)
	opts := exitCode("0")
	opts["workspace_size"] = "1Gi"
	opts["storage_class"] = ns
	opts["tolerations"] = []any{map[string]any{"operator": "Exists"}}
	ws, err := p.Setup(ctx, &engine.SetupRequest{Job: "j", Options: opts})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	for i := range 2 {
		res, _, errOut := execText(t, p, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "true"})
		if res.ExitCode != 0 {
			t.Fatalf("command %d on the claim: %+v %s", i, res, errOut)
		}
	}
	claim, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "palvella-ws-"+ws.ID, metav1.GetOptions{})
	if err != nil || claim.Spec.VolumeName != pv.Name {
		t.Fatalf("the workspace's claim: %v, bound to %q, want %s", err, claim.Spec.VolumeName, pv.Name)
	}
	if err := p.Teardown(ctx, ws.ID); err != nil {
		t.Fatal(err)
	}
	waitNone(t, cs, ns, labelWorkspace+"="+ws.ID, "after Teardown")
	if err := p.Teardown(ctx, ws.ID); !errors.Is(err, sdk.ErrNotFound) {
		t.Fatalf("second Teardown: %v, want not found", err)
	}
}

// A plugin process killed in the middle of a job leaves its pod, Secret
// and anchor; once its Lease has expired, the next engine to start in the
// namespace deletes them, and leaves alone those of an engine that lives.
func TestKilledPluginLeavesNothingAfterTheNextStart_KwokNoRealContainer(t *testing.T) {
	c := k8stest.Shared(t)
	ns := c.Namespace(t)
	cs := clientset(t)
	ctx := context.Background()

	alive := newEngine(t, ns, map[string]any{"tolerations": []any{map[string]any{"operator": "Exists"}}})
	kept := setup(t, alive, nil)
	go alive.Exec(ctx, &engine.ExecRequest{WorkspaceID: kept.ID, Script: "sleep 600"}, nil)

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(sdktest.MinimalEnv(), serveEnv+"=1")
	proc := sdktest.Launch(t, cmd)
	p := sdktest.Dispense[engine.Engine](t, proc, sdk.CategoryEngine)
	resp, err := p.Configure(ctx, &sdk.ConfigureRequest{Config: map[string]any{"kubeconfig": c.Kubeconfig, "namespace": ns, "image": testImage,
		"lease_duration": "1s", "tolerations": []any{map[string]any{"operator": "Exists"}}}})
	if err != nil || sdk.HasErrors(resp.Diagnostics) {
		t.Fatalf("Configure: %v %v", err, resp)
	}
	ws, err := p.Setup(ctx, &engine.SetupRequest{Job: "killed"})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	go p.Exec(ctx, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "sleep 600"}, nil)
	waitPod(t, cs, ns, ws.ID, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if err := syscall.Kill(proc.Client.ReattachConfig().Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if l := left(t, cs, ns, labelWorkspace+"="+ws.ID); len(l) < 3 {
		t.Fatalf("after the kill, want the job's pod, Secret and anchor still there (the sweep has something to do): %v", l)
	}
	time.Sleep(3 * time.Second) // twice the killed engine's Lease

	// The next start in this namespace sweeps.
	newEngine(t, ns, nil)
	waitNone(t, cs, ns, labelWorkspace+"="+ws.ID, "after the next engine started")

	// The live engine's job was left alone.
	waitPod(t, cs, ns, kept.ID, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if l := left(t, cs, ns, labelWorkspace+"="+kept.ID+","+labelRole+"=workspace"); len(l) != 1 {
		t.Fatalf("the live engine's anchor: %v", l)
	}
}

func TestNoClusterOrNoImageIsAClearError(t *testing.T) {
	p := New()
	resp, err := p.Configure(context.Background(), &sdk.ConfigureRequest{Config: map[string]any{"kubeconfig": "/nonexistent/kubeconfig", "image": testImage}})
	if err != nil || sdk.HasErrors(resp.Diagnostics) || len(resp.Diagnostics) != 1 || resp.Diagnostics[0].Field != "config.kubeconfig" {
		t.Fatalf("Configure with no cluster: %v %+v, want one warning on config.kubeconfig", err, resp)
	}
	_, err = p.Setup(context.Background(), &engine.SetupRequest{Job: "x"})
	if !errors.Is(err, sdk.ErrFailedPrecondition) || !strings.Contains(err.Error(), "/nonexistent/kubeconfig") {
		t.Fatalf("Setup with no cluster: %v", err)
	}
	_, err = New().Setup(context.Background(), &engine.SetupRequest{Job: "x", Options: map[string]any{}})
	var typed *sdk.Error
	if !errors.As(err, &typed) || typed.Field != "image" {
		t.Fatalf("Setup without an image: %v, want an error on image", err)
	}
}
