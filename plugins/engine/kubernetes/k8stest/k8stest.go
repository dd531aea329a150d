// Package k8stest starts a real Kubernetes control plane for tests: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler built from
// Go modules (.ci/build-k8s), with kwok simulating two nodes and the
// lifecycle of its pods. Everything listens on random loopback ports and
// keeps its state in a temporary directory; a test binary starts at most
// one control plane (Shared) and stops every process when the tests end
// (Main).
//
// What kwok cannot do: no container really runs. Pods are scheduled to
// the kwok nodes, become Running, and stay Running unless a stage ends
// them. The stages here end a pod that carries the annotation ExitCodeKey
// with that exit code (phase Succeeded for 0, Failed otherwise), and
// delete pods being deleted at once. The apiserver's log endpoint is
// served by kwok's kubelet server with LogsText for every container: a
// real log stream through the apiserver, but not the command's output.
//
// When the binaries cannot be found the test fails and says how to build
// them; it is never skipped.
package k8stest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// EnvBin names the directory of the binaries (.ci/build-k8s prints it;
// .ci/run exports it).
const EnvBin = "PALVELLA_K8S_BIN"

// Version is the Kubernetes version .ci/build-k8s builds.
const Version = "1.35.4"

// Install says how to get the binaries.
const Install = "build them with `.ci/build-k8s` (about 6 minutes and 2.2 GB of memory once; .ci/run does it) and set " + EnvBin + " to the folder it prints"

// Annotations the test stages read on pods.
const (
	// ExitCodeKey ends the pod's containers with this exit code.
	ExitCodeKey = "kwok.palvella.dev/exit-code"
)

// LogsText is what the apiserver's log endpoint returns for every
// container (served by kwok from LogsFile). It is a key=value line: a run
// action whose outputs file does not come back (kwok runs no container,
// so none does) reads the file with a second command, whose output is
// this line too, and takes it as one output.
const LogsText = "kwok=log line from kwok's kubelet server\n"

// ServedLogNamespace is the namespace whose pods' containers serve, as
// their log, the file ServedLog names, which a test writes (kwok reads it
// when the log is asked for, and follows it): the bytes a real container
// would have written, through the apiserver and a kubelet's log server.
// Tests that use it do not run in parallel with one another.
const ServedLogNamespace = "kwok-served-log"

// The kwok nodes: NodeName is tainted palvella.dev/ci=true:NoSchedule and
// labelled palvella.dev/pool=ci; OtherNode (palvella.dev/pool=general)
// takes every other pod.
const (
	NodeName  = "kwok-node-0"
	OtherNode = "kwok-node-1"
)

// Cluster is a running control plane.
type Cluster struct {
	// Dir holds certificates, kubeconfigs, data and logs.
	Dir string
	// Kubeconfig is an admin kubeconfig (system:masters).
	Kubeconfig string
	// Server is the apiserver's URL.
	Server string

	procs []*proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

var (
	sharedMu  sync.Mutex
	shared    *Cluster
	sharedErr error
)

// Shared returns the test binary's control plane, starting it on first
// use. The test fails, saying how to build the binaries, when it cannot
// start.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = Start()
	}
	if sharedErr != nil {
		t.Fatalf("k8stest: %v", sharedErr)
	}
	return shared
}

// Main runs the tests and stops the shared control plane, if one was
// started: func TestMain(m *testing.M) { k8stest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	sharedMu.Lock()
	if shared != nil {
		shared.Stop()
	}
	sharedMu.Unlock()
	os.Exit(code)
}

// BinDir finds the binaries: $PALVELLA_K8S_BIN, else .ci/build-k8s's
// default cache folder.
func BinDir() (string, error) {
	dir := os.Getenv(EnvBin)
	if dir == "" {
		cache := os.Getenv("PALVELLA_CACHE")
		if cache == "" {
			base := os.Getenv("XDG_CACHE_HOME")
			if base == "" {
				home, _ := os.UserHomeDir()
				base = filepath.Join(home, ".cache")
			}
			cache = filepath.Join(base, "palvella")
		}
		dir = filepath.Join(cache, "k8s", Version)
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kwok-stages.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("%s is missing from %s: %s", b, dir, Install)
		}
	}
	return dir, nil
}

// Start starts a new control plane and a kwok node, and waits until pods
// can be created in the default namespace.
func Start() (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "palvella-k8s-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	if err := writePKI(dir); err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	ports, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	etcdClient, etcdPeer, apiPort, cmPort, schedPort, kwokPort := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]
	c.Server = "https://127.0.0.1:" + strconv.Itoa(apiPort)
	c.Kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	kc, err := kubeconfig(c.Server, dir)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(c.Kubeconfig, []byte(kc), 0o600); err != nil {
		return nil, err
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdClient)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPeer)
	if err := c.start(filepath.Join(bin, "etcd"), "--name=default", "--data-dir="+p("etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL, "--unsafe-no-fsync", "--log-level=warn"); err != nil {
		return nil, err
	}
	if err := c.start(filepath.Join(bin, "kube-apiserver"), "--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(apiPort),
		"--tls-cert-file="+p("apiserver.crt"), "--tls-private-key-file="+p("apiserver.key"),
		"--client-ca-file="+p("ca.crt"),
		"--kubelet-client-certificate="+p("admin.crt"), "--kubelet-client-key="+p("admin.key"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+p("sa.key"), "--service-account-signing-key-file="+p("sa.key"),
		"--service-cluster-ip-range=10.0.0.0/24", "--authorization-mode=Node,RBAC",
		"--allow-privileged=true", "--profiling=false", "--v=0"); err != nil {
		return nil, err
	}
	if err := c.waitReady(60 * time.Second); err != nil {
		return nil, err
	}
	if err := c.start(filepath.Join(bin, "kube-controller-manager"), "--kubeconfig="+c.Kubeconfig,
		"--authentication-kubeconfig="+c.Kubeconfig, "--authorization-kubeconfig="+c.Kubeconfig,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(cmPort), "--leader-elect=false",
		"--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route",
		"--service-account-private-key-file="+p("sa.key"), "--root-ca-file="+p("ca.crt"),
		"--use-service-account-credentials=false", "--profiling=false"); err != nil {
		return nil, err
	}
	if err := c.start(filepath.Join(bin, "kube-scheduler"), "--kubeconfig="+c.Kubeconfig,
		"--authentication-kubeconfig="+c.Kubeconfig, "--authorization-kubeconfig="+c.Kubeconfig,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(schedPort), "--leader-elect=false",
		"--profiling=false"); err != nil {
		return nil, err
	}
	if err := writeKwokConfig(dir, filepath.Join(bin, "kwok-stages.yaml")); err != nil {
		return nil, err
	}
	if err := c.start(filepath.Join(bin, "kwok"), "--kubeconfig="+c.Kubeconfig,
		"--config="+p("kwok.yaml"),
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--node-ip=127.0.0.1", "--node-port="+strconv.Itoa(kwokPort),
		"--server-address=127.0.0.1:"+strconv.Itoa(kwokPort),
		"--tls-cert-file="+p("apiserver.crt"), "--tls-private-key-file="+p("apiserver.key"),
		"--node-lease-duration-seconds=40"); err != nil {
		return nil, err
	}
	cs, err := c.Clientset()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// Two nodes: NodeName, tainted and labelled palvella.dev/pool=ci, which
	// only pods with a toleration and a node selector land on; and
	// OtherNode, for all the others.
	for _, n := range []struct {
		name, pool string
		taints     []corev1.Taint
	}{
		{NodeName, "ci", []corev1.Taint{{Key: "palvella.dev/ci", Value: "true", Effect: corev1.TaintEffectNoSchedule}}},
		{OtherNode, "general", nil},
	} {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name:        n.name,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
			Labels:      map[string]string{"kubernetes.io/hostname": n.name, "type": "kwok", "palvella.dev/pool": n.pool},
		}, Spec: corev1.NodeSpec{Taints: n.taints}}
		if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("create the kwok node %s: %w", n.name, err)
		}
	}
	if err := c.waitFor(ctx, "the kwok nodes to be ready and the default service account to exist", func() (bool, error) {
		for _, name := range []string{NodeName, OtherNode} {
			n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			ready := false
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready = true
				}
			}
			for _, t := range n.Spec.Taints {
				if t.Key == "node.kubernetes.io/not-ready" {
					ready = false
				}
			}
			if !ready {
				return false, nil
			}
		}
		_, err = cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// Config is an admin client configuration of the cluster.
func (c *Cluster) Config() (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 200, 400
	return cfg, nil
}

// Clientset is an admin client of the cluster.
func (c *Cluster) Clientset() (*kubernetes.Clientset, error) {
	cfg, err := c.Config()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// Namespace creates a namespace for one test, waits for its default
// service account (pods cannot be created before it exists), and deletes
// the namespace when the test ends.
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	cs, err := c.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 40 {
		name = name[:40]
	}
	name = strings.Trim(name, "-") + "-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		cs.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	if err := c.waitFor(ctx, "the default service account of "+name, func() (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}); err != nil {
		t.Fatal(err)
	}
	return name
}

func (c *Cluster) waitFor(ctx context.Context, what string, cond func() (bool, error)) error {
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		for _, p := range c.procs {
			select {
			case <-p.done:
				return fmt.Errorf("%s exited while waiting for %s:\n%s", p.name, what, tail(p.log))
			default:
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for %s (last error: %v)", what, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) waitReady(timeout time.Duration) error {
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.waitFor(ctx, "kube-apiserver to be ready", func() (bool, error) {
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok", err
	})
}

func (c *Cluster) start(bin string, args ...string) error {
	name := filepath.Base(bin)
	logPath := filepath.Join(c.Dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = c.Dir
	// The processes die with the test binary, even one that is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { cmd.Wait(); close(p.done) }()
	c.procs = append(c.procs, p)
	return nil
}

// Stop stops every process (in the reverse order of their start) and
// removes the directory.
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	c.procs = nil
	os.RemoveAll(c.Dir)
}

// ServedLog is the file the containers of pods in ServedLogNamespace
// serve as their log, in the kubelet's (CRI) log format: WriteServedLog
// writes it.
func (c *Cluster) ServedLog() string { return filepath.Join(c.Dir, "served.log") }

// WriteServedLog writes b as the log of the containers in
// ServedLogNamespace, as a container runtime would: stdout lines, those
// over 16 KiB cut into partial ones (containerd's default), the last one
// partial when b does not end with a newline.
func (c *Cluster) WriteServedLog(b []byte) error {
	const maxLine = 16 << 10
	var out strings.Builder
	for len(b) > 0 {
		line := b
		full := false
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, full = b[:i], true
		}
		for len(line) > maxLine {
			fmt.Fprintf(&out, "2026-12-01T00:00:00.000000000Z stdout P %s\n", line[:maxLine])
			line = line[maxLine:]
			b = b[maxLine:]
		}
		tag := "P"
		if full {
			tag = "F"
		}
		fmt.Fprintf(&out, "2026-12-01T00:00:00.000000000Z stdout %s %s\n", tag, line)
		b = b[len(line):]
		if full {
			b = b[1:]
		}
	}
	// Written whole under another name, then renamed: a reader never sees
	// half of it.
	tmp := c.ServedLog() + ".new"
	if err := os.WriteFile(tmp, []byte(out.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, c.ServedLog())
}

// LogTail returns the end of a component's log ("kube-apiserver", "kwok",
// ...), for failure messages.
func (c *Cluster) LogTail(name string) string {
	return tail(filepath.Join(c.Dir, name+".log"))
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// kubeconfig holds the certificates inline: with file paths, client-go
// watches the files for rotation and logs every few seconds, for the rest
// of the test binary's life, once the test's directory is removed.
func kubeconfig(server, dir string) (string, error) {
	var data [3]string
	for i, name := range []string{"ca.crt", "admin.crt", "admin.key"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "", err
		}
		data[i] = base64.StdEncoding.EncodeToString(b)
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
`, server, data[0], data[1], data[2]), nil
}

// writeKwokConfig writes kwok's configuration: the stock stages of
// .ci/build-k8s, the test stage that ends annotated pods with an exit
// code, and the logs every container serves.
func writeKwokConfig(dir, stock string) error {
	stages, err := os.ReadFile(stock)
	if err != nil {
		return err
	}
	logs := filepath.Join(dir, "container.log")
	// kwok reads the file in the kubelet's (CRI) log format and serves
	// the text.
	if err := os.WriteFile(logs, []byte("2026-12-01T00:00:00.000000000Z stdout F "+LogsText), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "served.log"), nil, 0o644); err != nil {
		return err
	}
	// kwok takes the first ClusterLogs whose selector matches.
	cfg := string(stages) + exitStage + fmt.Sprintf(`
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: served
spec:
  selector:
    matchNamespaces: [%s]
  logs:
  - containers: []
    logsFile: %s
    follow: false
`, ServedLogNamespace, filepath.Join(dir, "served.log")) + fmt.Sprintf(`
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: all
spec:
  logs:
  - containers: []
    logsFile: %s
    follow: false
`, logs)
	return os.WriteFile(filepath.Join(dir, "kwok.yaml"), []byte(cfg), 0o644)
}

// exitStage ends a running pod that carries ExitCodeKey: every container
// terminates with that code, the pod Succeeded for 0 and Failed
// otherwise.
const exitStage = `
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: palvella-pod-exit-code
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Running'
    - key: '.metadata.annotations["` + ExitCodeKey + `"]'
      operator: 'Exists'
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $root := . }}
      {{ $code := index .metadata.annotations "` + ExitCodeKey + `" }}
      containerStatuses:
      {{ range $index, $item := .spec.containers }}
      - image: {{ $item.image | Quote }}
        name: {{ $item.name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: {{ $code }}
            finishedAt: {{ $now | Quote }}
            reason: {{ if eq $code "0" }}Completed{{ else }}Error{{ end }}
            startedAt: {{ $now | Quote }}
      {{ end }}
      phase: {{ if eq $code "0" }}Succeeded{{ else }}Failed{{ end }}
`

// writePKI writes a CA, the apiserver's serving certificate (also kwok's),
// an admin client certificate (O=system:masters) and the service account
// signing key.
func writePKI(dir string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now().Add(-time.Hour)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "palvella-test-ca"},
		NotBefore: now, NotAfter: now.Add(24 * time.Hour * 30),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	if err := writeCert(filepath.Join(dir, "ca.crt"), caDER); err != nil {
		return err
	}
	leaf := func(name string, serial int64, subj pkix.Name, usage x509.ExtKeyUsage, ips []net.IP, dns []string) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: subj,
			NotBefore: now, NotAfter: now.Add(24 * time.Hour * 30),
			KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips, DNSNames: dns,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		if err := writeCert(filepath.Join(dir, name+".crt"), der); err != nil {
			return err
		}
		return writeKey(filepath.Join(dir, name+".key"), key)
	}
	if err := leaf("apiserver", 2, pkix.Name{CommonName: "kube-apiserver"}, x509.ExtKeyUsageServerAuth,
		[]net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 0, 0, 1)},
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}); err != nil {
		return err
	}
	if err := leaf("admin", 3, pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}}, x509.ExtKeyUsageClientAuth, nil, nil); err != nil {
		return err
	}
	sa, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	return writeKey(filepath.Join(dir, "sa.key"), sa)
}

func writeCert(path string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeKey(path string, key any) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}
