// Package dockertest starts a real Docker daemon for tests and builds a
// small local image in it, so that tests of Docker-backed code run against
// the real Engine API without a registry or the network.
//
// The daemon runs as root from Debian's docker.io package, with the vfs
// storage driver, no bridge and no iptables rules, its state in a temporary
// directory and its socket there too: it shares nothing with a Docker the
// machine may already run. A test binary starts at most one daemon (Shared)
// and stops it when the tests end (Main).
//
// When dockerd cannot be found or started, the test fails and says how to
// install it; it is never skipped.
package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// Image is the local busybox image every daemon started here has: busybox
// with all its applets in /bin, PATH=/bin and sh as its command.
const Image = "palvella-test/busybox:1"

// Install says how to get what this package needs.
const Install = "install Docker and busybox with `apt-get install -y docker.io busybox-static` (as root; .ci/run does it)"

// Daemon is a running dockerd.
type Daemon struct {
	// Host is the daemon's address in DOCKER_HOST form (unix://...).
	Host string
	// Dir holds the daemon's state, socket and log.
	Dir string

	cmd  *exec.Cmd
	done chan struct{}
}

var (
	sharedMu  sync.Mutex
	shared    *Daemon
	sharedErr error
)

// Shared returns the test binary's daemon, starting it on first use, with
// Image built in it. The test fails, saying how to install Docker, when the
// daemon cannot start.
func Shared(t testing.TB) *Daemon {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = Start()
	}
	if sharedErr != nil {
		t.Fatalf("dockertest: %v", sharedErr)
	}
	return shared
}

// Main runs the tests and stops the shared daemon, if one was started:
// func TestMain(m *testing.M) { dockertest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	sharedMu.Lock()
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "dockertest: %v\n", err)
		}
	}
	sharedMu.Unlock()
	os.Exit(code)
}

// Start starts a new daemon and builds Image in it.
func Start() (*Daemon, error) {
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		for _, p := range []string{"/usr/sbin/dockerd", "/usr/bin/dockerd"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("dockerd is not installed: %s", Install)
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("dockerd needs root and this test runs as uid %d: run it as root", os.Geteuid())
	}
	dir, err := os.MkdirTemp("", "palvella-dockerd-")
	if err != nil {
		return nil, err
	}
	d := &Daemon{Dir: dir, Host: "unix://" + filepath.Join(dir, "docker.sock"), done: make(chan struct{})}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	d.cmd = exec.Command(bin,
		"--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=vfs",
		"--data-root="+filepath.Join(dir, "root"), "--exec-root="+filepath.Join(dir, "exec"),
		"--host="+d.Host, "--pidfile="+filepath.Join(dir, "dockerd.pid"))
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// dockerd dies with the test binary, even one that is killed.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start dockerd: %w (%s)", err, Install)
	}
	go func() { d.cmd.Wait(); close(d.done) }()

	c, err := d.Client()
	if err != nil {
		d.Stop()
		return nil, err
	}
	defer c.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.Ping(ctx, client.PingOptions{})
		cancel()
		if err == nil {
			break
		}
		select {
		case <-d.done:
			return nil, fmt.Errorf("dockerd exited at start: %s", d.logTail())
		default:
		}
		if time.Now().After(deadline) {
			d.Stop()
			return nil, fmt.Errorf("dockerd did not answer within 60 s: %v\n%s", err, d.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := d.ImportBusybox(context.Background(), Image); err != nil {
		d.Stop()
		return nil, err
	}
	return d, nil
}

// Client returns a new Engine API client of the daemon.
func (d *Daemon) Client() (*client.Client, error) {
	return client.New(client.WithHost(d.Host), client.WithAPIVersionNegotiation())
}

// ImportBusybox builds an image named ref from the machine's static
// busybox: a rootfs with every applet linked in /bin, imported through the
// Engine API.
func (d *Daemon) ImportBusybox(ctx context.Context, ref string) error {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return fmt.Errorf("busybox is not installed: %s", Install)
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		return fmt.Errorf("busybox --list: %w", err)
	}
	bin, err := os.ReadFile(bb)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, dir := range []string{"bin", "tmp", "etc", "proc", "sys", "dev", "root"} {
		mode := int64(0o755)
		if dir == "tmp" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: mode}); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bin))}); err != nil {
		return err
	}
	if _, err := tw.Write(bin); err != nil {
		return err
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777}); err != nil {
			return err
		}
	}
	passwd := "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
	for name, content := range map[string]string{"etc/passwd": passwd, "etc/group": "root:x:0:\nnogroup:x:65534:\n"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(content))}); err != nil {
			return err
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	c, err := d.Client()
	if err != nil {
		return err
	}
	defer c.Close()
	rc, err := c.ImageImport(ctx, client.ImageImportSource{Source: &buf, SourceName: "-"}, ref,
		client.ImageImportOptions{Changes: []string{`CMD ["/bin/sh"]`, "ENV PATH=/bin"}})
	if err != nil {
		return fmt.Errorf("import the busybox image: %w", err)
	}
	defer rc.Close()
	msg, err := readAll(rc)
	if err != nil || strings.Contains(msg, `"error"`) {
		return fmt.Errorf("import the busybox image: %v %s", err, msg)
	}
	return nil
}

func readAll(r interface{ Read([]byte) (int, error) }) (string, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r)
	return b.String(), err
}

// Stop stops the daemon (SIGTERM, then SIGKILL after 20 s) and removes
// its directory.
func (d *Daemon) Stop() error {
	if d.cmd != nil && d.cmd.Process != nil {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(20 * time.Second):
			syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-d.done
		}
	}
	// Mounts a killed daemon left would make the removal fail.
	if out, err := exec.Command("sh", "-c", "grep -o ' "+d.Dir+"[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l").CombinedOutput(); err != nil {
		return fmt.Errorf("unmount under %s: %v %s", d.Dir, err, out)
	}
	if err := os.RemoveAll(d.Dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", d.Dir, err)
	}
	return nil
}

// LogTail returns the end of the daemon's log, for failure messages.
func (d *Daemon) logTail() string {
	b, _ := os.ReadFile(filepath.Join(d.Dir, "dockerd.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
