package kubernetes

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

// The wrapper a command with files out runs in its pod, run here by a real
// sh with its termination log in a file (kwok's pods run no container, so
// the cluster tests cannot show it): the command's status is kept, the
// regular files come back whole (binary too), the others are left out,
// and a message cut at the kubelet's 4096 bytes is refused.
func TestFilesOutComeBackThroughTheTerminationMessage(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	binary := []byte{0, 1, 2, 0xff, '\n', 'x'}
	if err := os.WriteFile(filepath.Join(root, "sub", "bin"), binary, 0o644); err != nil {
		t.Fatal(err)
	}
	msgFile := filepath.Join(t.TempDir(), "termination-log")
	run := func(script string, files ...string) (int, string) {
		t.Helper()
		argv, env, err := withFilesOut([]string{"sh", "-e", "-c", script}, root, files)
		if err != nil {
			t.Fatal(err)
		}
		if argv[5] != terminationLog {
			t.Fatalf("argv[5] = %q, want the termination log", argv[5])
		}
		argv[5] = msgFile
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = root
		cmd.Env = os.Environ()
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		err = cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(msgFile)
		if err != nil {
			t.Fatal(err)
		}
		return code, string(b)
	}

	code, msg := run(`printf 'changed=true\nname=a b\n' > outputs.env; exit 3`, "outputs.env", "sub/bin", "missing", "sub")
	if code != 3 {
		t.Fatalf("exit %d, want the command's 3", code)
	}
	files, err := filesFromMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Path != "outputs.env" || string(files[0].Content) != "changed=true\nname=a b\n" ||
		files[1].Path != "sub/bin" || !bytes.Equal(files[1].Content, binary) {
		t.Fatalf("files %+v from %q: want outputs.env and sub/bin whole, the missing file and the directory left out", files, msg)
	}

	_, msg = run(`head -c 5000 /dev/zero > big`, "big")
	if len(msg) <= maxTerminationBytes {
		t.Fatalf("message of %d bytes for a 5000-byte file", len(msg))
	}
	if _, err := filesFromMessage(msg[:maxTerminationBytes]); !errors.Is(err, sdk.ErrResourceExhausted) || !strings.Contains(err.Error(), "4096") {
		t.Fatalf("a message cut at 4096 bytes: %v, want a refusal naming the limit", err)
	}

	for _, other := range []string{"", "Completed by kwok\nexit 0"} {
		if files, err := filesFromMessage(other); err != nil || files != nil {
			t.Fatalf("message %q (a pod that did not run the wrapper): %v, %v; want no file", other, files, err)
		}
	}
	if _, _, err := withFilesOut([]string{"true"}, root, []string{"a\nb"}); !errors.Is(err, sdk.ErrInvalidArgument) {
		t.Fatalf("a path of two lines: %v", err)
	}
}
