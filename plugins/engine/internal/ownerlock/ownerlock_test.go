package ownerlock

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// A live holder is not gone; once its process has died (here, a child
// that took the lock and was killed), it is, and its file is removed.
func TestGoneOnlyOnceTheHolderDied(t *testing.T) {
	dir := t.TempDir()
	var l Locks
	if err := l.Hold(dir, "me"); err != nil {
		t.Fatal(err)
	}
	if err := l.Hold(dir, "me"); err != nil {
		t.Fatalf("holding again: %v", err)
	}
	if Gone(dir, "me") {
		t.Fatal("an owner whose lock this process holds is gone")
	}

	// flock(1) holds the lock of another owner in a process of its own,
	// and says so once it has it.
	other := filepath.Join(dir, "other.lock")
	// -o: the command does not inherit the lock, flock alone holds it.
	cmd := exec.Command("flock", "-o", "-x", other, "sh", "-c", "echo locked; exec sleep 60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("flock(1), from util-linux: %v", err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "locked" {
		t.Fatalf("flock(1) said %q, %v", buf, err)
	}
	if Gone(dir, "other") {
		t.Fatal("an owner whose process holds its lock is gone")
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
	if !Gone(dir, "other") {
		t.Fatal("an owner whose process was killed is not gone")
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Fatalf("the gone owner's lock file is still there: %v", err)
	}
	for _, bad := range []string{"", ".", "..", "a/b"} {
		if Gone(dir, bad) {
			t.Errorf("owner %q is gone", bad)
		}
	}
	if !Gone(dir, "never-was") {
		t.Error("an owner without a lock file is not gone")
	}
}

func TestRandomID(t *testing.T) {
	a, b := RandomID(16), RandomID(16)
	if len(a) != 16 || a == b {
		t.Fatalf("RandomID(16) = %q, %q", a, b)
	}
}
