package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/palvella/palvella/core/server"
)

// cutOff sends what to the server and then nothing, and returns how long
// the server took to answer or close the connection.
func cutOff(t *testing.T, addr, what string) (time.Duration, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, what); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, _ := io.ReadAll(conn) // until the server closes it (or the test's own deadline)
	return time.Since(start), string(b)
}

// TestSlowClientsAreCutOff: a client that sends part of its headers, or 1
// byte of a 1,000-byte body, and then nothing is cut off after the read
// timeouts; an event stream outlives them.
func TestSlowClientsAreCutOff(t *testing.T) {
	s := startServer(t, "", "--read-header-timeout", "1s", "--read-timeout", "2s", "--idle-timeout", "2s")
	admin := s.adminToken()

	took, _ := cutOff(t, s.addr, "GET /api/v1/whoami HTTP/1.1\r\nHost: palvella\r\nAuthorization: Bea")
	if took > 6*time.Second {
		t.Errorf("half a header: held for %s, want about the 1s read-header timeout", took)
	}
	took, answer := cutOff(t, s.addr, "POST /api/v1/pipelines/apply HTTP/1.1\r\nHost: palvella\r\nAuthorization: Bearer "+admin+
		"\r\nContent-Type: application/yaml\r\nContent-Length: 1000\r\n\r\na")
	if took < 1500*time.Millisecond || took > 8*time.Second {
		t.Errorf("1 byte of 1,000: held for %s, want about the 2s read timeout (answer %q)", took, answer)
	}
	took, _ = cutOff(t, s.addr, "GET /api/v1/health HTTP/1.1\r\nHost: palvella\r\n\r\n")
	if took > 6*time.Second {
		t.Errorf("an idle kept-alive connection: held for %s, want about the 2s idle timeout", took)
	}

	// A stream is not cut by the read timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	time.Sleep(4 * time.Second) // twice the read timeout
	s.mustCLI("pipeline", "apply", "-f", securityFile("gate.yaml"))
	s.mustCLI("pipeline", "run", "gate")
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the event stream ended after the read timeout")
			}
			if strings.HasPrefix(l, "event: run") {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no run event on the stream")
		}
	}
}

func modeOf(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestPrivateFileModes: the home is 0700 and its databases, key and
// cli.json 0600, including a home an older version left 0755.
func TestPrivateFileModes(t *testing.T) {
	s := startServer(t, "")
	s.mustCLI("credential", "set", "x", "--value", "some-value")
	check := func() {
		t.Helper()
		if m := modeOf(t, s.home); m != 0o700 {
			t.Errorf("home: %04o, want 0700", m)
		}
		var files []string
		for _, p := range []string{"cli.json", "secret.key", "palvella.db*", "tokens.db*", "credentials.db*"} {
			m, _ := filepath.Glob(filepath.Join(s.home, p))
			if len(m) == 0 {
				t.Errorf("no %s under the home", p)
			}
			files = append(files, m...)
		}
		for _, f := range files {
			if m := modeOf(t, f); m != 0o600 {
				t.Errorf("%s: %04o, want 0600", filepath.Base(f), m)
			}
		}
	}
	check()
	s.stop(syscall.SIGTERM)
	for path, mode := range map[string]os.FileMode{s.home: 0o755, filepath.Join(s.home, "palvella.db"): 0o644, filepath.Join(s.home, "cli.json"): 0o644} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	s.start()
	check()
	if log := mustRead(t, filepath.Join(s.home, "server.log")); !strings.Contains(log, "was mode 0755: made it 0700") || !strings.Contains(log, "palvella.db was mode 0644") {
		t.Errorf("the server did not say it fixed the modes:\n%s", s.logTail())
	}
}

// TestDoctor finds a cli.json others can read, a key in the environment
// and a server beyond loopback without TLS, and exits 1.
func TestDoctor(t *testing.T) {
	s := startServer(t, "")
	doctor := func(env []string, args ...string) (DoctorReport, int) {
		t.Helper()
		cmd := exec.Command(palvellaBin, append([]string{"doctor", "-o", "json"}, args...)...)
		cmd.Env = append(append(os.Environ(), "PALVELLA_HOME="+s.home, server.SecretKeyEnv+"="), env...)
		out, _ := cmd.Output()
		var rep DoctorReport
		if err := json.Unmarshal(out, &rep); err != nil {
			t.Fatalf("doctor -o json: %v: %s", err, out)
		}
		return rep, cmd.ProcessState.ExitCode()
	}
	find := func(rep DoctorReport, check, status string) *Finding {
		for i, f := range rep.Findings {
			if f.Check == check && f.Status == status {
				return &rep.Findings[i]
			}
		}
		return nil
	}
	if rep, code := doctor(nil); code != 0 || !rep.OK {
		t.Fatalf("doctor on a fresh server's home: exit %d %+v", code, rep)
	}
	cli := filepath.Join(s.home, server.CLIConfigFile)
	if err := os.Chmod(cli, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, code := doctor(nil)
	if f := find(rep, "file-mode", "fail"); code != 1 || rep.OK || f == nil || f.Path != cli || f.Mode != "0644" || !strings.Contains(f.Fix, "chmod 600") {
		t.Errorf("doctor with cli.json 0644: exit %d %+v", code, rep)
	}
	if err := os.Chmod(cli, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, code = doctor([]string{server.SecretKeyEnv + "=c2VjcmV0"}, "--listen", "0.0.0.0:7700")
	if code != 1 || find(rep, "key-in-env", "warn") == nil || find(rep, "listen-tls", "fail") == nil {
		t.Errorf("doctor with the key in the environment, beyond loopback without TLS: exit %d %+v", code, rep)
	}
	if out, _, code := s.cli("doctor"); code != 0 || !strings.Contains(out, "home-mode") {
		t.Errorf("doctor as a table: exit %d:\n%s", code, out)
	}
}

// TestCLITrustsAPrivateCA: --ca-cert and PALVELLA_CA_CERT make the CLI
// trust a server whose certificate a private CA signed.
func TestCLITrustsAPrivateCA(t *testing.T) {
	certFile, keyFile, _ := selfSigned(t)
	home, addr := t.TempDir(), freeAddr(t)
	cmd := exec.Command(palvellaBin, "server", "--listen", addr, "--tls-cert", certFile, "--tls-key", keyFile, "--webhook-listen", "off")
	cmd.Env = append(os.Environ(), "PALVELLA_HOME="+home)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(home, server.CLIConfigFile)); err == nil {
			if _, _, code := palvella(t, home, "token", "whoami", "--ca-cert", certFile); code == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the CLI never reached the TLS server with --ca-cert")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, errOut, code := palvella(t, home, "token", "whoami"); code == 0 || !strings.Contains(errOut, "certificate") {
		t.Errorf("without --ca-cert: exit %d: %s", code, errOut)
	}
	env := exec.Command(palvellaBin, "token", "whoami")
	env.Env = append(os.Environ(), "PALVELLA_HOME="+home, "PALVELLA_CA_CERT="+certFile)
	if out, err := env.CombinedOutput(); err != nil || !strings.Contains(string(out), server.ManagementOwner) {
		t.Errorf("with PALVELLA_CA_CERT: %v: %s", err, out)
	}
}
