package main

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testServer is a real `palvella server` process.
type testServer struct {
	t    *testing.T
	home string
	addr string
	cmd  *exec.Cmd
	logs *os.File
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startServer starts a server on a fresh home and waits until it answers.
func startServer(t *testing.T, home string, args ...string) *testServer {
	t.Helper()
	if home == "" {
		home = t.TempDir()
	}
	s := &testServer{t: t, home: home, addr: freeAddr(t)}
	s.start(args...)
	t.Cleanup(func() { s.stop(syscall.SIGTERM) })
	return s
}

func (s *testServer) start(args ...string) {
	s.t.Helper()
	logs, err := os.OpenFile(filepath.Join(s.home, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	s.logs = logs
	if !slices.Contains(args, "--webhook-listen") {
		// Tests run many servers; none of them takes the default port.
		args = append(args, "--webhook-listen", "off")
	}
	if !slices.Contains(args, "--shutdown-grace") {
		// A test's server stops at its end with jobs still running: they
		// are handed back at once rather than after the default grace.
		args = append(args, "--shutdown-grace", "1s")
	}
	s.cmd = exec.Command(palvellaBin, append([]string{"server", "--listen", s.addr, "--log-level", "debug"}, args...)...)
	s.cmd.Env = append(os.Environ(), "PALVELLA_HOME="+s.home)
	s.cmd.Stdout, s.cmd.Stderr = logs, logs
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		resp, err := http.Get("http://" + s.addr + "/api/v1/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-ctx.Done():
			s.t.Fatalf("server did not answer on %s:\n%s", s.addr, s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop stops the server with sig and waits for it.
func (s *testServer) stop(sig syscall.Signal) {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
	s.logs.Close()
}

func (s *testServer) logTail() string {
	f, err := os.Open(filepath.Join(s.home, "server.log"))
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	return strings.Join(lines, "\n")
}

// cli runs the palvella CLI against the server (found through cli.json).
func (s *testServer) cli(args ...string) (string, string, int) {
	s.t.Helper()
	return palvella(s.t, s.home, args...)
}

// mustCLI runs the CLI and fails the test on a non-zero exit.
func (s *testServer) mustCLI(args ...string) string {
	s.t.Helper()
	out, errOut, code := s.cli(args...)
	if code != 0 {
		s.t.Fatalf("palvella %s: exit %d\nstdout: %s\nstderr: %s\nserver log:\n%s", strings.Join(args, " "), code, out, errOut, s.logTail())
	}
	return out
}

// jobDir makes a directory the jobs can write to whatever user they run
// as (the local engine runs jobs as an unprivileged user under root).
func jobDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "palvella-executions-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// readableCopy copies a file of the repository where a job can read it
// whatever user it runs as (the clone may be in a folder only root enters).
func readableCopy(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "palvella-fixture-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, filepath.Base(path))
	if err := os.WriteFile(out, data, fi.Mode().Perm()|0o444); err != nil {
		t.Fatal(err)
	}
	return out
}
