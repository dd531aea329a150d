// Package kubernetes_test applies the manifests of deploy/kubernetes to a
// real control plane (etcd, kube-apiserver, controller-manager, scheduler)
// with kwok nodes, and checks what Kubernetes makes of them.
package kubernetes_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
	enginek8s "github.com/palvella/palvella/plugins/engine/kubernetes"
	"github.com/palvella/palvella/plugins/engine/kubernetes/k8stest"
	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
)

func TestMain(m *testing.M) { k8stest.Main(m) }

// objects reads the manifests the kustomization lists, in its order.
func objects(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	var kust struct {
		Resources []string `yaml:"resources"`
	}
	b, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &kust); err != nil {
		t.Fatal(err)
	}
	var out []*unstructured.Unstructured
	for _, f := range kust.Resources {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				if err.Error() == "EOF" {
					break
				}
				t.Fatalf("%s: %v", f, err)
			}
			if m == nil {
				continue
			}
			out = append(out, &unstructured.Unstructured{Object: m})
		}
	}
	return out
}

// The manifests apply (server-side) to a real control plane; its
// controllers and scheduler make the servers' and workers' pods (kwok runs
// them: no container really runs), the Service finds the servers, and the
// service account can do what the Kubernetes engine needs in the jobs'
// namespace, with the engine settings of config.yaml, and nothing more.
func TestManifestsApplyAndTheEngineRunsWithTheirRBAC_KwokNoRealContainer(t *testing.T) {
	c := k8stest.Shared(t)
	cfg, err := c.Config()
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(cfg)))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// What a cluster provides and the walk-through creates by hand: a
	// volume for the storage claim, and the two Secrets.
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "palvella-storage-test"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("20Gi")},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/palvella-storage"}},
		},
	}
	if _, err := cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, obj := range objects(t) {
		gvk := obj.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s %s: %v", gvk, obj.GetName(), err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if obj.GetNamespace() != "" {
			ri = dyn.Resource(m.Resource).Namespace(obj.GetNamespace())
		}
		if _, err := ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: "palvella-deploy-test"}); err != nil {
			t.Fatalf("apply %s %s/%s: %v", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
		}
		if gvk.Kind == "Namespace" && obj.GetName() == "palvella" {
			for name, kv := range map[string][2]string{"palvella-db": {"dsn", "postgres://palvella:PASSWORD@db.example:5432/palvella"}, "palvella-secret-key": {"key", "0123456789abcdef0123456789abcdef"}} {
				s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "palvella"}, StringData: map[string]string{kv[0]: kv[1]}}
				if _, err := cs.CoreV1().Secrets("palvella").Create(ctx, s, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}

	// The controllers make the pods, the scheduler places them, kwok
	// reports them ready.
	waitFor(t, ctx, "the server and worker Deployments to be available", func() (bool, string) {
		var states []string
		ok := true
		for _, name := range []string{"palvella-server", "palvella-worker"} {
			d, err := cs.AppsV1().Deployments("palvella").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			states = append(states, fmt.Sprintf("%s %d/%d", name, d.Status.AvailableReplicas, *d.Spec.Replicas))
			ok = ok && d.Status.AvailableReplicas == *d.Spec.Replicas
		}
		return ok, strings.Join(states, ", ")
	})
	waitFor(t, ctx, "the palvella Service to have the servers as endpoints", func() (bool, string) {
		slices, err := cs.DiscoveryV1().EndpointSlices("palvella").List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=palvella"})
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					n++
				}
			}
		}
		return n == 2, fmt.Sprintf("%d ready endpoints", n)
	})
	pods, err := cs.CoreV1().Pods("palvella").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=server"})
	if err != nil || len(pods.Items) != 2 {
		t.Fatalf("server pods: %v %d", err, len(pods.Items))
	}
	pod := pods.Items[0]
	ctr := pod.Spec.Containers[0]
	dsn := ""
	for _, e := range ctr.Env {
		if e.Name == "PALVELLA_DATABASE_DSN" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			dsn = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		}
	}
	if pod.Spec.ServiceAccountName != "palvella" || dsn != "palvella-db/dsn" || pod.Spec.SecurityContext.RunAsNonRoot == nil ||
		!*pod.Spec.SecurityContext.RunAsNonRoot || !strings.Contains(strings.Join(ctr.Args, " "), "--no-worker") {
		t.Errorf("server pod: account %q, DSN from %q, security %+v, args %v", pod.Spec.ServiceAccountName, dsn, pod.Spec.SecurityContext, ctr.Args)
	}
	claim, err := cs.CoreV1().PersistentVolumeClaims("palvella").Get(ctx, "palvella-storage", metav1.GetOptions{})
	if err != nil || claim.Status.Phase != corev1.ClaimBound {
		t.Errorf("storage claim: %v %v", err, claim.Status.Phase)
	}

	// The servers' account, impersonated: the engine, with config.yaml's
	// settings of the default engine, runs a job in palvella-jobs.
	kubeconfig := impersonating(t, c, "system:serviceaccount:palvella:palvella")
	params := defaultEngineParams(t)
	params["annotations"] = map[string]any{k8stest.ExitCodeKey: "0"}
	p := enginek8s.New()
	resp, err := p.Configure(ctx, &sdk.ConfigureRequest{Config: map[string]any{"kubeconfig": kubeconfig, "lease_duration": "2s"}})
	if err != nil || len(resp.Diagnostics) > 0 {
		// The default namespace is out of the account's reach: a warning.
		if err != nil || sdk.HasErrors(resp.Diagnostics) {
			t.Fatalf("Configure: %v %+v", err, resp)
		}
	}
	ws, err := p.Setup(ctx, &engine.SetupRequest{Namespace: "default", Pipeline: "p", Run: "p-1", Job: "build", Options: params})
	if err != nil {
		t.Fatalf("Setup with the servers' account and config.yaml's engine: %v", err)
	}
	var out bytes.Buffer
	res, err := p.Exec(ctx, &engine.ExecRequest{WorkspaceID: ws.ID, Script: "make", Env: map[string]string{"TOKEN": "t"}}, func(_ string, b []byte) error {
		out.Write(b)
		return nil
	})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Exec with the servers' account: %v %+v %s", err, res, out.String())
	}
	if err := p.Teardown(ctx, ws.ID); err != nil {
		t.Fatalf("Teardown with the servers' account: %v", err)
	}

	// And nothing more: no reading Secrets, no exec, nothing elsewhere.
	imp := *cfg
	imp.Impersonate.UserName = "system:serviceaccount:palvella:palvella"
	ics := kubernetes.NewForConfigOrDie(&imp)
	forbidden := map[string]error{}
	_, forbidden["list secrets in palvella-jobs"] = ics.CoreV1().Secrets("palvella-jobs").List(ctx, metav1.ListOptions{})
	_, forbidden["get a Secret in palvella"] = ics.CoreV1().Secrets("palvella").Get(ctx, "palvella-db", metav1.GetOptions{})
	_, forbidden["create a pod in palvella"] = ics.CoreV1().Pods("palvella").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "x"}}}}, metav1.CreateOptions{})
	_, forbidden["list pods in palvella-jobs"] = ics.CoreV1().Pods("palvella-jobs").List(ctx, metav1.ListOptions{})
	forbidden["exec in a pod of palvella-jobs"] = ics.CoreV1().RESTClient().Post().Namespace("palvella-jobs").Resource("pods").Name("x").SubResource("exec").Do(ctx).Error()
	_, forbidden["list nodes"] = ics.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	for what, err := range forbidden {
		if !apierrors.IsForbidden(err) {
			t.Errorf("the servers' account may %s: %v, want forbidden", what, err)
		}
	}
}

// defaultEngineParams are the parameters config.yaml gives its default
// engine (what a named engine hands the engine at every job).
func defaultEngineParams(t *testing.T) map[string]any {
	t.Helper()
	for _, obj := range objects(t) {
		if obj.GetKind() != "ConfigMap" || obj.GetName() != "palvella-config" {
			continue
		}
		data, _, _ := unstructured.NestedString(obj.Object, "data", "palvella.yaml")
		var conf struct {
			Engines []map[string]any `yaml:"engines"`
		}
		if err := yaml.Unmarshal([]byte(data), &conf); err != nil {
			t.Fatal(err)
		}
		for _, e := range conf.Engines {
			if e["default"] == true {
				if e["type"] != "kubernetes" {
					t.Fatalf("config.yaml's default engine is of type %v", e["type"])
				}
				for _, k := range []string{"name", "type", "default", "setup", "teardown"} {
					delete(e, k)
				}
				return e
			}
		}
	}
	t.Fatal("config.yaml has no default engine")
	return nil
}

// impersonating writes a kubeconfig of the cluster's admin acting as user.
func impersonating(t *testing.T, c *k8stest.Cluster, user string) string {
	t.Helper()
	b, err := os.ReadFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	s := regexp.MustCompile(`(?m)^(    client-key-data: .*)$`).ReplaceAllString(string(b), "$1\n    as: "+user)
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() (bool, string)) {
	t.Helper()
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s: %s", what, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
