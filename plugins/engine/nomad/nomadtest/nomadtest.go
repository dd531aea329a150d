// Package nomadtest starts a real Nomad agent (server and client in one
// process, as `nomad agent -dev` does) for tests, so that tests of
// Nomad-backed code run against the real HTTP API, scheduler and task
// drivers.
//
// The agent is the binary PALVELLA_NOMAD names, which .ci/build-nomad
// builds from Go modules and caches outside the clone (.ci/run and `make
// test` set it). It listens on random loopback ports, keeps its state in a
// temporary directory, enables raw_exec, and points its docker driver at a daemon the test gives (see
// dockertest). A test binary starts at most one shared agent (Shared) and
// stops it when the tests end (Main); Start starts another.
//
// When the binary is missing the test fails and says how to build it; it
// is never skipped.
package nomadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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

	"github.com/hashicorp/nomad/api"
)

// Install says how to get the agent.
const Install = "build Nomad once with `export PALVELLA_NOMAD=$(.ci/build-nomad)` (~4 minutes, cached outside the clone; .ci/run and make test do it)"

// Options are the settings of an agent.
type Options struct {
	// DockerHost is the Docker daemon of the agent's docker driver
	// (unix://...); empty leaves the driver without a daemon.
	DockerHost string
}

// Agent is a running Nomad agent.
type Agent struct {
	// Addr is its HTTP API's address (http://127.0.0.1:PORT).
	Addr string
	// Dir holds its configuration, state and log.
	Dir string

	cmd  *exec.Cmd
	done chan struct{}
}

var (
	sharedMu  sync.Mutex
	shared    *Agent
	sharedErr error
)

// Binary is the Nomad binary the tests run: PALVELLA_NOMAD. The test fails
// when it is unset or does not run.
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatalf("nomadtest: %v", err)
	}
	return bin
}

func binary() (string, error) {
	bin := os.Getenv("PALVELLA_NOMAD")
	if bin == "" {
		return "", fmt.Errorf("PALVELLA_NOMAD is not set. These tests run a real Nomad agent: %s", Install)
	}
	if out, err := exec.Command(bin, "version").CombinedOutput(); err != nil {
		return "", fmt.Errorf("PALVELLA_NOMAD=%s does not run: %v\n%s\nRebuild it with .ci/build-nomad", bin, err, out)
	}
	return bin, nil
}

// Shared returns the test binary's agent, starting it on first use (raw_exec
// enabled, no Docker daemon).
func Shared(t testing.TB) *Agent {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = Start(Options{})
	}
	if sharedErr != nil {
		t.Fatalf("nomadtest: %v", sharedErr)
	}
	return shared
}

// Main runs the tests and stops the shared agent, if one was started:
// func TestMain(m *testing.M) { nomadtest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	sharedMu.Lock()
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "nomadtest: %v\n", err)
		}
	}
	sharedMu.Unlock()
	os.Exit(code)
}

// StartT starts an agent that is stopped when the test ends.
func StartT(t testing.TB, opts Options) *Agent {
	t.Helper()
	a, err := Start(opts)
	if err != nil {
		t.Fatalf("nomadtest: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Stop(); err != nil {
			t.Errorf("nomadtest: %v", err)
		}
	})
	return a
}

// Start starts a new agent and waits until its node is ready with the
// raw_exec driver (and docker, when a daemon is given).
func Start(opts Options) (*Agent, error) {
	bin, err := binary()
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("a Nomad client needs root (task directories, cgroups) and this test runs as uid %d: run it as root", os.Geteuid())
	}
	dir, err := os.MkdirTemp("", "palvella-nomad-")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	id := randomID()
	a := &Agent{Dir: dir, Addr: fmt.Sprintf("http://127.0.0.1:%d", ports[0]), done: make(chan struct{})}
	docker := ""
	if opts.DockerHost != "" {
		docker = fmt.Sprintf(`plugin "docker" {
  config {
    endpoint = %q
    volumes { enabled = false }
    gc { image = false }
    allow_privileged = false
  }
}
`, opts.DockerHost)
	}
	conf := fmt.Sprintf(`name = "palvella-test-%s"
data_dir = %q
bind_addr = "127.0.0.1"
disable_update_check = true
log_level = "INFO"
ports {
  http = %d
  rpc  = %d
  serf = %d
}
advertise {
  http = "127.0.0.1"
  rpc  = "127.0.0.1"
  serf = "127.0.0.1"
}
server {
  enabled          = true
  bootstrap_expect = 1
}
client {
  enabled           = true
  network_interface = "lo"
  gc_interval       = "1m"
  options = {
    "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"
  }
}
consul {
  auto_advertise   = false
  server_auto_join = false
  client_auto_join = false
}
plugin "raw_exec" {
  config {
    enabled = true
  }
}
%s`, id, filepath.Join(dir, "data"), ports[0], ports[1], ports[2], docker)
	if err := os.WriteFile(filepath.Join(dir, "agent.hcl"), []byte(conf), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer logf.Close()
	a.cmd = exec.Command(bin, "agent", "-config="+filepath.Join(dir, "agent.hcl"))
	a.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	// The agent dies with the test binary, even one that is killed.
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := a.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start the Nomad agent: %w", err)
	}
	go func() { a.cmd.Wait(); close(a.done) }()
	if err := a.waitReady(opts.DockerHost != ""); err != nil {
		a.Stop()
		return nil, err
	}
	return a, nil
}

// Client returns an API client of the agent.
func (a *Agent) Client() (*api.Client, error) {
	cfg := api.DefaultConfig()
	cfg.Address = a.Addr
	cfg.SecretID = ""
	return api.NewClient(cfg)
}

func (a *Agent) waitReady(docker bool) error {
	c, err := a.Client()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for {
		select {
		case <-a.done:
			return fmt.Errorf("the Nomad agent exited at start:\n%s", a.LogTail())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the Nomad agent was not ready within 90 s (%s):\n%s", last, a.LogTail())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		nodes, _, err := c.Nodes().List((&api.QueryOptions{}).WithContext(ctx))
		cancel()
		switch {
		case err != nil:
			last = err.Error()
		case len(nodes) == 0:
			last = "no node registered yet"
		default:
			n := nodes[0]
			ok := n.Status == "ready" && healthy(n.Drivers["raw_exec"]) && (!docker || healthy(n.Drivers["docker"]))
			if ok {
				return nil
			}
			last = fmt.Sprintf("node %s, raw_exec %v, docker %v", n.Status, n.Drivers["raw_exec"], n.Drivers["docker"])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func healthy(d *api.DriverInfo) bool { return d != nil && d.Detected && d.Healthy }

// Stop stops the agent and everything it started. Nomad keeps tasks
// running when its agent stops (the next agent reattaches to them), so
// Stop first stops every job and has their allocations collected, then
// stops the agent (SIGINT, then SIGKILL after 20 s), kills what the agent
// started that still runs (executors, log monitors, tasks: a test that
// failed half-way may leave a job), removes its allocations' cgroups,
// unmounts what its client left mounted (the tasks' secrets tmpfs) and
// removes its directory. The cgroup parent Nomad shares between agents
// (/nomad, nomad.slice) stays.
func (a *Agent) Stop() error {
	var errs []error
	if a.cmd != nil && a.cmd.Process != nil {
		select {
		case <-a.done:
		default:
			if err := a.stopJobs(); err != nil {
				errs = append(errs, err)
			}
		}
		started := descendants(a.cmd.Process.Pid)
		a.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-a.done:
		case <-time.After(20 * time.Second):
			syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
			<-a.done
		}
		for _, p := range started {
			if startTime(p.pid) == p.start {
				syscall.Kill(p.pid, syscall.SIGKILL)
			}
		}
	}
	allocs, _ := os.ReadDir(filepath.Join(a.Dir, "data", "alloc"))
	for _, al := range allocs {
		cgs, _ := filepath.Glob("/sys/fs/cgroup/*/*/" + al.Name() + ".*")
		more, _ := filepath.Glob("/sys/fs/cgroup/*/*/*/" + al.Name() + ".*")
		for _, cg := range append(cgs, more...) {
			syscall.Rmdir(cg)
		}
	}
	if out, err := exec.Command("sh", "-c", "grep -o ' "+a.Dir+"[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l").CombinedOutput(); err != nil {
		errs = append(errs, fmt.Errorf("unmount under %s: %v %s", a.Dir, err, out))
	}
	if err := os.RemoveAll(a.Dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove %s: %w", a.Dir, err))
	}
	return errors.Join(errs...)
}

// stopJobs stops every job of the agent, waits until their allocations
// have stopped, and has the client collect them (which removes their
// directories and containers).
func (a *Agent) stopJobs() error {
	c, err := a.Client()
	if err != nil {
		return err
	}
	jobs, _, err := c.Jobs().List(nil)
	if err != nil {
		return fmt.Errorf("list the agent's jobs: %w", err)
	}
	for _, j := range jobs {
		if _, _, err := c.Jobs().Deregister(j.ID, false, nil); err != nil {
			return fmt.Errorf("stop job %s: %w", j.ID, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		allocs, _, err := c.Allocations().List(nil)
		if err != nil {
			return fmt.Errorf("list the agent's allocations: %w", err)
		}
		running := 0
		for _, al := range allocs {
			if al.ClientStatus == api.AllocClientStatusRunning || al.ClientStatus == api.AllocClientStatusPending {
				running++
			}
		}
		if running == 0 {
			for _, al := range allocs {
				c.Allocations().GC(&api.Allocation{ID: al.ID, NodeID: al.NodeID}, nil)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d allocations still run 30 s after their jobs were stopped", running)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type proc struct {
	pid   int
	start string
}

// descendants lists the processes under pid, with their start times (so
// that a reused PID is never taken for one of them).
func descendants(pid int) []proc {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp := field(p, 4); pp != "" {
			ppid, _ := strconv.Atoi(pp)
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []proc
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			out = append(out, proc{c, startTime(c)})
			walk(c)
		}
	}
	walk(pid)
	return out
}

func startTime(pid int) string { return field(pid, 22) }

// field is the nth field (from 1) of /proc/PID/stat.
func field(pid, n int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if n-3 < 0 || n-3 >= len(f) {
		return ""
	}
	return f[n-3]
}

// LogTail returns the end of the agent's log, for failure messages.
func (a *Agent) LogTail() string {
	b, _ := os.ReadFile(filepath.Join(a.Dir, "agent.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// freePorts returns n loopback ports that were free a moment ago.
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

func randomID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Jobs lists the IDs of the agent's jobs whose ID starts with prefix.
func (a *Agent) Jobs(prefix string) ([]string, error) {
	c, err := a.Client()
	if err != nil {
		return nil, err
	}
	jobs, _, err := c.Jobs().List(&api.QueryOptions{Prefix: prefix})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, j := range jobs {
		ids = append(ids, j.ID+" "+j.Status)
	}
	return ids, nil
}
