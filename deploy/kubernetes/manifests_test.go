// Package kubernetes_test applies the manifests of deploy/kubernetes to a
// real control plane (etcd, kube-apiserver, controller-manager, scheduler)
// with kwok nodes, and checks what Kubernetes makes of them.
package kubernetes_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

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
// them: no container really runs), the Service finds the servers, the
// workers are `palvella worker` processes that reach the servers through
// that Service over HTTPS with their token from a Secret, and the workers'
// service account can do what the Kubernetes engine needs in the jobs'
// namespace and nothing more, the servers' nothing at all. The workers'
// command line, configuration and account are then run for real: a
// `palvella worker` ($PALVELLA_BIN) with the manifest's arguments, as the
// workers' account, takes a job from a `palvella server` with config.yaml's
// engines and runs it as pods in palvella-jobs.
func TestManifestsApplyAndTheWorkersRunJobsWithTheirRBAC_KwokNoRealContainer(t *testing.T) {
	c := k8stest.Shared(t)
	cfg, err := c.Config()
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(cfg)))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pki := newPKI(t)

	// What a cluster provides and the walk-through creates by hand: a
	// volume for the storage claim, and the Secrets.
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
	secrets := map[string]map[string]string{
		"palvella-db":           {"dsn": "postgres://palvella:PASSWORD@db.example:5432/palvella"},
		"palvella-secret-key":   {"key": "0123456789abcdef0123456789abcdef"},
		"palvella-tls":          {"tls.crt": pki.cert, "tls.key": pki.key, "ca.crt": pki.ca},
		"palvella-worker-token": {"token": "pvt_not-a-real-token"},
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
			for name, data := range secrets {
				s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "palvella"}, StringData: data}
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

	// The servers: the database from its Secret, HTTPS with the
	// certificate of palvella-tls, no embedded worker, and no token of
	// the Kubernetes API.
	server := onePod(t, cs, "server")
	sctr := server.Spec.Containers[0]
	if server.Spec.ServiceAccountName != "palvella" || envFrom(sctr, "PALVELLA_DATABASE_DSN") != "palvella-db/dsn" ||
		server.Spec.SecurityContext.RunAsNonRoot == nil || !*server.Spec.SecurityContext.RunAsNonRoot ||
		!slices.Contains(sctr.Args, "--no-worker") || !slices.Contains(sctr.Args, "--tls-cert") {
		t.Errorf("server pod: account %q, DSN from %q, security %+v, args %v", server.Spec.ServiceAccountName, envFrom(sctr, "PALVELLA_DATABASE_DSN"), server.Spec.SecurityContext, sctr.Args)
	}
	for _, f := range []string{"--tls-cert", "--tls-key"} {
		if vol := secretOf(t, server, flag(sctr.Args, f)); vol != "palvella-tls" {
			t.Errorf("server pod: %s %s is not a file of the Secret palvella-tls (%q)", f, flag(sctr.Args, f), vol)
		}
	}
	if tokenMounted(server) {
		t.Errorf("server pod: the Kubernetes API token is mounted; the servers run no job and need none")
	}

	// The workers: palvella worker, to the Service over HTTPS, the token
	// from its Secret; no database, no key, no storage.
	worker := onePod(t, cs, "worker")
	wctr := worker.Spec.Containers[0]
	svc, err := cs.CoreV1().Services("palvella").Get(ctx, "palvella", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantServer := fmt.Sprintf("https://%s.%s.svc:%d", svc.Name, svc.Namespace, svc.Spec.Ports[0].Port)
	if len(wctr.Args) == 0 || wctr.Args[0] != "worker" || flag(wctr.Args, "--server") != wantServer {
		t.Errorf("worker pod: args %v, want worker --server %s (the Service palvella)", wctr.Args, wantServer)
	}
	if worker.Spec.ServiceAccountName != "palvella-worker" || !tokenMounted(worker) || envFrom(wctr, "PALVELLA_TOKEN") != "palvella-worker-token/token" {
		t.Errorf("worker pod: account %q (token mounted: %v), PALVELLA_TOKEN from %q; want palvella-worker, its token, and the Secret palvella-worker-token", worker.Spec.ServiceAccountName, tokenMounted(worker), envFrom(wctr, "PALVELLA_TOKEN"))
	}
	for _, e := range wctr.Env {
		if e.Name == "PALVELLA_DATABASE_DSN" || e.Name == "PALVELLA_SECRET_KEY" {
			t.Errorf("worker pod: %s is set; a worker reaches no database and holds no credential key", e.Name)
		}
	}
	for _, v := range worker.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			t.Errorf("worker pod: mounts the claim %s; a worker reaches no storage", v.PersistentVolumeClaim.ClaimName)
		}
		if v.Secret != nil && (len(v.Secret.Items) != 1 || v.Secret.Items[0].Key != "ca.crt") {
			t.Errorf("worker pod: mounts %v of the Secret %s; it needs the certificate authority only", v.Secret.Items, v.Secret.SecretName)
		}
	}
	if vol := secretOf(t, worker, flag(wctr.Args, "--ca-cert")); vol != "palvella-tls" {
		t.Errorf("worker pod: --ca-cert %s is not a file of the Secret palvella-tls (%q)", flag(wctr.Args, "--ca-cert"), vol)
	}
	claim, err := cs.CoreV1().PersistentVolumeClaims("palvella").Get(ctx, "palvella-storage", metav1.GetOptions{})
	if err != nil || claim.Status.Phase != corev1.ClaimBound {
		t.Errorf("storage claim: %v %v", err, claim.Status.Phase)
	}

	// The worker for real: the manifest's arguments (the mounted files
	// written here, the Service's name replaced by the local server's
	// address), the token from a server, the workers' account.
	runWorkerJob(t, ctx, c, cs, worker, pki)

	// And nothing more: the workers' account reads no Secret, execs in no
	// pod, touches nothing elsewhere; the servers' account can do nothing.
	for account, extra := range map[string][]string{"palvella-worker": nil, "palvella": {"create a pod in palvella-jobs", "get the log of a pod in palvella-jobs"}} {
		imp := *cfg
		imp.Impersonate.UserName = "system:serviceaccount:palvella:" + account
		ics := kubernetes.NewForConfigOrDie(&imp)
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "x"}}}}
		forbidden := map[string]error{}
		_, forbidden["list secrets in palvella-jobs"] = ics.CoreV1().Secrets("palvella-jobs").List(ctx, metav1.ListOptions{})
		_, forbidden["get a Secret in palvella"] = ics.CoreV1().Secrets("palvella").Get(ctx, "palvella-db", metav1.GetOptions{})
		_, forbidden["create a pod in palvella"] = ics.CoreV1().Pods("palvella").Create(ctx, pod, metav1.CreateOptions{})
		_, forbidden["list pods in palvella-jobs"] = ics.CoreV1().Pods("palvella-jobs").List(ctx, metav1.ListOptions{})
		forbidden["exec in a pod of palvella-jobs"] = ics.CoreV1().RESTClient().Post().Namespace("palvella-jobs").Resource("pods").Name("x").SubResource("exec").Do(ctx).Error()
		_, forbidden["list nodes"] = ics.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		for _, what := range extra {
			switch what {
			case "create a pod in palvella-jobs":
				_, forbidden[what] = ics.CoreV1().Pods("palvella-jobs").Create(ctx, pod, metav1.CreateOptions{})
			case "get the log of a pod in palvella-jobs":
				forbidden[what] = ics.CoreV1().Pods("palvella-jobs").GetLogs("x", &corev1.PodLogOptions{}).Do(ctx).Error()
			}
		}
		for what, err := range forbidden {
			if !apierrors.IsForbidden(err) {
				t.Errorf("the account %s may %s: %v, want forbidden", account, what, err)
			}
		}
	}
}

// runWorkerJob runs a `palvella server` (sqlite, HTTPS with the test's
// certificate, config.yaml's engines, kwok ending each pod with 0) and a
// `palvella worker` with the arguments of the workers' container, its
// configuration file from the ConfigMap, its token from the server, and
// the workers' account (impersonated) as its Kubernetes credentials; a
// pipeline's job then runs on the worker as pods in palvella-jobs.
func runWorkerJob(t *testing.T, ctx context.Context, c *k8stest.Cluster, cs kubernetes.Interface, worker *corev1.Pod, pki *testPKI) {
	t.Helper()
	wctr := worker.Spec.Containers[0]
	bin := palvellaBinary(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile := write("ca.crt", pki.ca)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	engines := defaultEngineParams(t)
	engines["annotations"] = map[string]any{k8stest.ExitCodeKey: "0"}
	conf, err := yaml.Marshal(map[string]any{
		"apiVersion": "palvella.dev/v1", "kind": "ServerConfig",
		"engines": []any{mergeMaps(map[string]any{"name": "pods", "type": "kubernetes", "default": true}, engines)},
	})
	if err != nil {
		t.Fatal(err)
	}
	serverHome := filepath.Join(dir, "server")
	srv := exec.Command(bin, "server", "--config", write("server.yaml", string(conf)), "--listen", addr,
		"--tls-cert", write("tls.crt", pki.cert), "--tls-key", write("tls.key", pki.key), "--webhook-listen", "off", "--no-worker")
	srv.Env = append(os.Environ(), "PALVELLA_HOME="+serverHome, "KUBECONFIG=/nonexistent")
	var srvLog bytes.Buffer
	srv.Stdout, srv.Stderr = &srvLog, &srvLog
	start(t, srv)
	url := "https://" + strings.Replace(addr, "127.0.0.1", "localhost", 1)
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "PALVELLA_HOME="+serverHome, "PALVELLA_SERVER="+url, "PALVELLA_CA_CERT="+caFile, "PALVELLA_TOKEN="+cliToken(t, serverHome))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("palvella %s: %v\n%s\nserver:\n%s", strings.Join(args, " "), err, out, tail(srvLog.String()))
		}
		return string(out)
	}
	waitFor(t, ctx, "the local server to answer over HTTPS", func() (bool, string) {
		if _, err := os.Stat(filepath.Join(serverHome, "cli.json")); err != nil {
			return false, tail(srvLog.String())
		}
		cmd := exec.CommandContext(ctx, bin, "worker", "list")
		cmd.Env = append(os.Environ(), "PALVELLA_HOME="+serverHome, "PALVELLA_SERVER="+url, "PALVELLA_CA_CERT="+caFile, "PALVELLA_TOKEN="+cliToken(t, serverHome))
		out, err := cmd.CombinedOutput()
		return err == nil, string(out) + tail(srvLog.String())
	})
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(cli("token", "create", "k8s-workers", "--role", "worker", "-o", "json")), &tok); err != nil || tok.Token == "" {
		t.Fatalf("the worker token: %v %+v", err, tok)
	}

	// The worker's command line, as the Deployment gives it, with its
	// files where the test wrote them and the Service's name replaced.
	args := slices.Clone(wctr.Args)
	for i, a := range args {
		switch {
		case a == flag(wctr.Args, "--server"):
			args[i] = url
		case strings.HasPrefix(a, "/etc/palvella-tls/"):
			args[i] = caFile
		case a == flag(wctr.Args, "--config"):
			args[i] = write("worker.yaml", inClusterAs(t, configFile(t, worker, a), impersonating(t, c, "system:serviceaccount:palvella:palvella-worker")))
		}
	}
	args = append(args, "--name", "k8s-worker-test", "--shutdown-grace", "1s")
	wk := exec.Command(bin, args...)
	// What the pod's environment has: the cluster's address (empty here,
	// so the engine takes the kubeconfig inClusterAs gave it) and the
	// pod's name and UID.
	wk.Env = append(os.Environ(), "PALVELLA_HOME="+filepath.Join(dir, "worker"), "PALVELLA_TOKEN="+tok.Token,
		"KUBERNETES_SERVICE_HOST=", "KUBERNETES_SERVICE_PORT=", "PALVELLA_POD_NAME="+worker.Name, "PALVELLA_POD_UID="+string(worker.UID))
	var wkLog bytes.Buffer
	wk.Stdout, wk.Stderr = &wkLog, &wkLog
	start(t, wk)

	pipeline := write("ci.yaml", `apiVersion: palvella.dev/v1
kind: Pipeline
metadata: {name: ci}
spec:
  jobs:
    - name: test
      actions:
        - {name: vet, run: echo vet}
`)
	cli("pipeline", "apply", "-f", pipeline)
	cmd := exec.CommandContext(ctx, bin, "pipeline", "run", "ci", "--wait")
	cmd.Env = append(os.Environ(), "PALVELLA_HOME="+serverHome, "PALVELLA_SERVER="+url, "PALVELLA_CA_CERT="+caFile, "PALVELLA_TOKEN="+cliToken(t, serverHome))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the run on the worker: %v\n%s\n%s\nworker:\n%s\nserver:\n%s", err, out, cli("run", "get", "ci-1"), tail(wkLog.String()), tail(srvLog.String()))
	}
	if out := cli("worker", "list"); !strings.Contains(out, "k8s-worker-test") {
		t.Errorf("palvella worker list does not show the worker:\n%s", out)
	}
	// The job's pods were made in palvella-jobs, with the job's labels,
	// and are gone.
	evs, err := cs.CoreV1().Events("palvella-jobs").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Pod"})
	if err != nil {
		t.Fatal(err)
	}
	scheduled := 0
	for _, e := range evs.Items {
		if e.Reason == "Scheduled" && strings.HasPrefix(e.InvolvedObject.Name, "palvella-") {
			scheduled++
		}
	}
	if scheduled == 0 {
		t.Errorf("no pod of the job was scheduled in palvella-jobs")
	}
	waitFor(t, ctx, "the job's pods to be gone", func() (bool, string) {
		pods, err := cs.CoreV1().Pods("palvella-jobs").List(ctx, metav1.ListOptions{LabelSelector: "palvella.dev/pipeline=ci"})
		if err != nil {
			return false, err.Error()
		}
		return len(pods.Items) == 0, fmt.Sprintf("%d pods", len(pods.Items))
	})
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

// inClusterAs checks that the workers' configuration gives the Kubernetes
// engine what it needs to find the cluster from inside a pod (a plugin
// gets only the environment its configuration names), and adds to it
// what stands in for the pod's service account token here: a kubeconfig
// of that account.
func inClusterAs(t *testing.T, conf, kubeconfig string) string {
	t.Helper()
	var f map[string]any
	if err := yaml.Unmarshal([]byte(conf), &f); err != nil {
		t.Fatal(err)
	}
	plugins, _ := f["plugins"].(map[string]any)
	engine, _ := plugins["engine-kubernetes"].(map[string]any)
	env, _ := engine["env"].(map[string]any)
	for _, k := range []string{"KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"} {
		if v, _ := env[k].(map[string]any); v["from_env"] != k {
			t.Errorf("the workers' configuration does not pass %s to engine-kubernetes (plugins.engine-kubernetes.env: %v): in a pod the engine would not find the cluster", k, env)
		}
	}
	if env == nil {
		env = map[string]any{}
		engine["env"] = env
	}
	env["KUBECONFIG"] = kubeconfig
	b, err := yaml.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// onePod is a pod of the component ("server", "worker").
func onePod(t *testing.T, cs kubernetes.Interface, component string) *corev1.Pod {
	t.Helper()
	pods, err := cs.CoreV1().Pods("palvella").List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=" + component})
	if err != nil || len(pods.Items) != 2 {
		t.Fatalf("%s pods: %v, %d of them", component, err, len(pods.Items))
	}
	return &pods.Items[0]
}

// envFrom is "secret/key" of the variable's Secret, or "".
func envFrom(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			return e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		}
	}
	return ""
}

// flag is the value after name in args, or "".
func flag(args []string, name string) string {
	if i := slices.Index(args, name); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// mountOf is the volume mounted where file is, and the file's path in it.
func mountOf(t *testing.T, pod *corev1.Pod, file string) (*corev1.Volume, string) {
	t.Helper()
	for _, m := range pod.Spec.Containers[0].VolumeMounts {
		if rest, ok := strings.CutPrefix(file, m.MountPath+"/"); ok {
			for i, v := range pod.Spec.Volumes {
				if v.Name == m.Name {
					return &pod.Spec.Volumes[i], rest
				}
			}
		}
	}
	t.Fatalf("pod %s mounts nothing where %s is", pod.Name, file)
	return nil, ""
}

// secretOf is the Secret whose key the file is, or "".
func secretOf(t *testing.T, pod *corev1.Pod, file string) string {
	t.Helper()
	v, rest := mountOf(t, pod, file)
	if v.Secret == nil {
		return ""
	}
	for _, it := range v.Secret.Items {
		if it.Path == rest {
			return v.Secret.SecretName
		}
	}
	return ""
}

// configFile is the content of a file of a ConfigMap the pod mounts, as
// the manifests give it.
func configFile(t *testing.T, pod *corev1.Pod, file string) string {
	t.Helper()
	v, rest := mountOf(t, pod, file)
	if v.ConfigMap == nil {
		t.Fatalf("%s is not in a ConfigMap", file)
	}
	key := rest
	for _, it := range v.ConfigMap.Items {
		if it.Path == rest {
			key = it.Key
		}
	}
	for _, obj := range objects(t) {
		if obj.GetKind() == "ConfigMap" && obj.GetName() == v.ConfigMap.Name {
			if data, ok, _ := unstructured.NestedString(obj.Object, "data", key); ok {
				return data
			}
		}
	}
	t.Fatalf("%s: no key %s in the ConfigMap %s", file, key, v.ConfigMap.Name)
	return ""
}

// tokenMounted says whether the pod has a Kubernetes API token (the
// volume the ServiceAccount admission plugin adds).
func tokenMounted(pod *corev1.Pod) bool {
	for _, v := range pod.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil {
				return true
			}
		}
	}
	return false
}

// testPKI is a certificate authority and a serving certificate for the
// Service's names and loopback, in PEM.
type testPKI struct{ ca, cert, key string }

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(-time.Hour)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "palvella-test-ca"},
		NotBefore: now, NotAfter: now.Add(48 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "palvella"},
		NotBefore: now, NotAfter: now.Add(48 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"palvella.palvella.svc", "palvella.palvella.svc.cluster.local", "localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{
		ca:   string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})),
		cert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		key:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
	}
}

// palvellaBinary is $PALVELLA_BIN, or palvella built for the test.
func palvellaBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("PALVELLA_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "palvella")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/palvella").CombinedOutput(); err != nil {
		t.Fatalf("build palvella (or set PALVELLA_BIN): %v\n%s", err, out)
	}
	return bin
}

// start starts cmd and stops it (SIGTERM, then SIGKILL) when the test
// ends.
func start(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
}

// cliToken is the management token the local server wrote to its home.
func cliToken(t *testing.T, home string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(home, "cli.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.Token == "" {
		t.Fatalf("cli.json: %v %s", err, b)
	}
	return c.Token
}

func mergeMaps(a, b map[string]any) map[string]any {
	for k, v := range b {
		a[k] = v
	}
	return a
}

func tail(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}
