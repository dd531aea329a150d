package kubernetes

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugins/engine/kubernetes/k8stest"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// wrapperRun is one run of the files-out wrapper by a real sh, as the
// command's container would run it: its log (stdout and stderr in one, as
// the kubelet keeps them), its exit code and its termination message.
type wrapperRun struct {
	log     []byte
	code    int
	message string
	nonce   string
}

// runWrapper runs script in root under the wrapper with shell (["sh"],
// or busybox's), asking for files; path, when set, is the PATH the shell
// finds wc and base64 in.
func runWrapper(t testing.TB, shell []string, path, root, script string, files ...string) wrapperRun {
	t.Helper()
	argv, env, nonce, err := withFilesOut([]string{"sh", "-e", "-c", script}, root, files)
	if err != nil {
		t.Fatal(err)
	}
	if argv[0] != "sh" || argv[5] != terminationLog {
		t.Fatalf("wrapped argv %q: want sh, ..., the termination log at 5", argv)
	}
	msgFile := filepath.Join(t.TempDir(), "termination-log")
	argv[5] = msgFile
	cmd := exec.Command(shell[0], append(shell[1:], argv[1:]...)...)
	cmd.Dir = root
	cmd.Env = []string{"HOME=/", "PATH=" + os.Getenv("PATH")}
	if path != "" {
		cmd.Env = []string{"HOME=/", "PATH=" + path}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	err = cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	msg, _ := os.ReadFile(msgFile)
	return wrapperRun{log: log.Bytes(), code: code, message: string(msg), nonce: nonce}
}

// readTrailer feeds log to a trailer in chunks of size chunk (the whole
// log when 0) and returns the output it handed out and its files.
func readTrailer(nonce string, log []byte, chunk int, requested []string, message string) (string, []engine.File, error) {
	var out bytes.Buffer
	tr := newTrailer(nonce, func(stream string, b []byte) error {
		out.Write(b)
		return nil
	})
	if chunk <= 0 {
		chunk = len(log) + 1
	}
	for b := log; len(b) > 0; {
		n := min(chunk, len(b))
		if err := tr.write(engine.Stdout, b[:n]); err != nil {
			return "", nil, err
		}
		b = b[n:]
	}
	tr.close()
	if err := tr.finish(); err != nil {
		return "", nil, err
	}
	files, err := tr.files(requested, message)
	return out.String(), files, err
}

// shells are the shells the wrapper is run with: the system's sh and,
// when the machine has it, busybox's sh with busybox's wc and base64 only
// (what Alpine and busybox images have).
func shells(t *testing.T) map[string][2]string {
	t.Helper()
	out := map[string][2]string{"sh": {"sh", ""}}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Logf("no busybox on this machine: the wrapper is run with sh only")
		return out
	}
	dir := t.TempDir()
	for _, applet := range []string{"sh", "wc", "base64", "head", "printf", "cat", "env", "ln", "mkdir", "chmod"} {
		if err := os.Symlink(bb, filepath.Join(dir, applet)); err != nil {
			t.Fatal(err)
		}
	}
	out["busybox"] = [2]string{filepath.Join(dir, "sh"), dir}
	return out
}

// The wrapper a command with files out runs in its pod, run here by real
// shells (kwok's pods run no container, so the cluster tests cannot show
// it), and its log read back by the trailer in chunks of every size: the
// command's output comes out exactly, its status is kept, regular files
// of several MiB come back whole (binary, executable), the others are
// left out, the nonce is neither in the command's environment nor in its
// output, and a trailer the output forges is output like any other.
func TestFilesOutComeBackAtTheEndOfTheLog(t *testing.T) {
	for name, sh := range shells(t) {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.MkdirAll(filepath.Join(root, "sub", "dir"), 0o755); err != nil {
				t.Fatal(err)
			}
			binary := []byte{0, 1, 2, 0xff, '\n', 'x'}
			big := make([]byte, 2<<20+3)
			rand.Read(big)
			for p, b := range map[string][]byte{"sub/bin": binary, "big.bin": big, "empty": nil} {
				if err := os.WriteFile(filepath.Join(root, p), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink("big.bin", filepath.Join(root, "link")); err != nil {
				t.Fatal(err)
			}
			// The output: lines, a forged trailer (another nonce), and no
			// newline at its end.
			script := `printf 'changed=true\nname=a b\n' > outputs.env
printf '#!/bin/sh\n' > tool.sh; chmod 755 tool.sh
env > env.txt
printf 'line one\npalvella-files-out-begin 00000000000000000000000000000000\nfile 4 644 outputs.env\nZm9yZwo=\npalvella-files-out-end 00000000000000000000000000000000 1\nno newline'
exit 3`
			run := runWrapper(t, []string{sh[0]}, sh[1], root, script, "outputs.env", "sub/bin", "big.bin", "tool.sh", "empty", "missing", "sub/dir", "link", "outputs.env")
			if run.code != 3 {
				t.Fatalf("exit %d, want the command's 3 (log %q)", run.code, clip(run.log))
			}
			if !strings.HasPrefix(run.message, filesOutMessage+" 5 files, ") {
				t.Errorf("termination message %q", run.message)
			}
			env, err := os.ReadFile(filepath.Join(root, "env.txt"))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(env), run.nonce) || strings.Contains(string(env), "PALVELLA_FILES_OUT") {
				t.Errorf("the command's environment holds the nonce or the wrapper's variables:\n%s", env)
			}
			wantOut := "line one\npalvella-files-out-begin 00000000000000000000000000000000\nfile 4 644 outputs.env\nZm9yZwo=\npalvella-files-out-end 00000000000000000000000000000000 1\nno newline"
			requested := []string{"outputs.env", "sub/bin", "big.bin", "tool.sh", "empty", "missing", "sub/dir", "link", "outputs.env"}
			for _, chunk := range []int{0, 1, 7, 100, 4096, 32 << 10} {
				out, files, err := readTrailer(run.nonce, run.log, chunk, requested, run.message)
				if err != nil {
					t.Fatalf("chunks of %d: %v", chunk, err)
				}
				if out != wantOut {
					t.Fatalf("chunks of %d: output %q, want %q", chunk, clip([]byte(out)), wantOut)
				}
				if strings.Contains(out, run.nonce) {
					t.Fatalf("chunks of %d: the nonce is in the output", chunk)
				}
				want := []engine.File{
					{Path: "outputs.env", Content: []byte("changed=true\nname=a b\n"), Mode: 0o644},
					{Path: "sub/bin", Content: binary, Mode: 0o644},
					{Path: "big.bin", Content: big, Mode: 0o644},
					{Path: "tool.sh", Content: []byte("#!/bin/sh\n"), Mode: 0o755},
					{Path: "empty", Content: []byte{}, Mode: 0o644},
				}
				if len(files) != len(want) {
					t.Fatalf("chunks of %d: %d files, want %d (the missing file, the directory and the link left out)", chunk, len(files), len(want))
				}
				for i, f := range files {
					if f.Path != want[i].Path || !bytes.Equal(f.Content, want[i].Content) || f.Mode != want[i].Mode {
						t.Fatalf("chunks of %d: file %d is %s (%d bytes, %v), want %s (%d bytes, %v)", chunk, i, f.Path, len(f.Content), f.Mode, want[i].Path, len(want[i].Content), want[i].Mode)
					}
				}
			}
		})
	}
}

// A trailer that is not whole is refused naming files_out, wherever it
// was cut; one mixed with other output too; files past the limit are
// refused naming the file; and a log the wrapper never wrote to (a pod
// that did not run it: kwok's, or one killed before) has no file unless
// its termination message says the wrapper wrote them.
func TestFilesOutTrailerCutMixedOrTooLargeIsRefused(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "a.txt"), bytes.Repeat([]byte("a"), 5000), 0o644); err != nil {
		t.Fatal(err)
	}
	run := runWrapper(t, []string{"sh"}, "", root, `echo out; printf 'b\n' > b.txt`, "a.txt", "b.txt")
	requested := []string{"a.txt", "b.txt"}
	if _, files, err := readTrailer(run.nonce, run.log, 0, requested, run.message); err != nil || len(files) != 2 {
		t.Fatalf("the whole log: %v, %d files", err, len(files))
	}
	begin := bytes.Index(run.log, []byte(filesOutBegin))
	if begin != len("out\n") {
		t.Fatalf("the begin line at %d of %q", begin, clip(run.log))
	}
	// Cut at every byte from the begin line to the last: never files,
	// never the trailer as output.
	for cut := begin; cut < len(run.log); cut++ {
		out, files, err := readTrailer(run.nonce, run.log[:cut], 0, requested, "")
		if cut < begin+len(filesOutBegin)+len(run.nonce)+2 {
			// The begin line is not whole: nothing of it is a file. The
			// output is the log as it is (it may be a prefix of a begin
			// line: it is handed out at the end).
			if err != nil || files != nil || out != string(run.log[:cut]) {
				t.Fatalf("cut at %d, in the begin line: %v, %v, output %q", cut, files, err, out)
			}
			continue
		}
		if !errors.Is(err, sdk.ErrInternal) || !strings.Contains(err.Error(), "files_out") || files != nil {
			t.Fatalf("cut at %d of %d: %v, %d files; want a refusal naming files_out", cut, len(run.log), err, len(files))
		}
		if out != "out\n" {
			t.Fatalf("cut at %d: output %q", cut, out)
		}
	}
	// Without a begin line: no file, unless the wrapper says it wrote them.
	if _, files, err := readTrailer(run.nonce, []byte("out\n"), 0, requested, "Completed by kwok"); err != nil || files != nil {
		t.Fatalf("no begin line, not the wrapper's message: %v %v", files, err)
	}
	if _, _, err := readTrailer(run.nonce, []byte("out\n"), 0, requested, run.message); !errors.Is(err, sdk.ErrInternal) || !strings.Contains(err.Error(), "not in the log") {
		t.Fatalf("no begin line, the wrapper's message: %v", err)
	}

	// Another process's line inside the trailer.
	nl := bytes.IndexByte(run.log[begin:], '\n') + begin + 1
	mixed := append(append(append([]byte{}, run.log[:nl]...), "late output\n"...), run.log[nl:]...)
	if _, _, err := readTrailer(run.nonce, mixed, 0, requested, run.message); !errors.Is(err, sdk.ErrInternal) || !strings.Contains(err.Error(), "mixed") {
		t.Fatalf("a line of other output in the trailer: %v", err)
	}
	// A byte lost in a file's base64.
	i := bytes.Index(run.log, []byte("YWFh"))
	lost := append(append([]byte{}, run.log[:i]...), run.log[i+1:]...)
	if _, _, err := readTrailer(run.nonce, lost, 0, requested, run.message); !errors.Is(err, sdk.ErrInternal) || !strings.Contains(err.Error(), "files_out[0]") {
		t.Fatalf("a byte lost in a.txt's base64: %v", err)
	}
	// Output after the end line (a background process) is output.
	after := append(append([]byte{}, run.log...), "bye\n"...)
	if out, files, err := readTrailer(run.nonce, after, 3, requested, run.message); err != nil || len(files) != 2 || out != "out\nbye\n" {
		t.Fatalf("output after the trailer: %q, %d files, %v", out, len(files), err)
	}
	// A trailer with another nonce is output, and no file comes back.
	if out, files, err := readTrailer(strings.Repeat("0", 32), run.log, 0, requested, ""); err != nil || files != nil || out != string(run.log) {
		t.Fatalf("another nonce: %v %v", files, err)
	}

	// Past 3 MiB in all: the wrapper sends the size alone and the file
	// is refused by its index.
	if err := os.WriteFile(filepath.Join(root, "big"), make([]byte, maxFilesOut-10), 0o644); err != nil {
		t.Fatal(err)
	}
	run = runWrapper(t, []string{"sh"}, "", root, `true`, "big", "a.txt")
	if len(run.log) > maxFilesOut/3*4+(maxFilesOut/3*4)/76+1000 {
		t.Fatalf("a log of %d bytes: the file past the limit was written", len(run.log))
	}
	if _, _, err := readTrailer(run.nonce, run.log, 0, []string{"big", "a.txt"}, run.message); !errors.Is(err, sdk.ErrResourceExhausted) || !strings.Contains(err.Error(), "files_out[1]") || !strings.Contains(err.Error(), "3 MiB") {
		t.Fatalf("files past 3 MiB: %v, want files_out[1] refused naming the limit", err)
	}
	if _, _, _, err := withFilesOut([]string{"true"}, root, []string{"a\nb"}); !errors.Is(err, sdk.ErrInvalidArgument) {
		t.Fatalf("a path of two lines: %v", err)
	}
}

// A log read again after its stream broke goes on where the stream
// stopped (the output missing from the stream is handed out, the files
// come back), unless it does not begin with what was read.
func TestFilesOutTrailerResumesFromTheLogReadAgain(t *testing.T) {
	root := t.TempDir()
	run := runWrapper(t, []string{"sh"}, "", root, `seq 1 2000; seq 1 3000 > n.txt`, "n.txt")
	for _, cut := range []int{0, 100, bytes.Index(run.log, []byte(filesOutBegin)) + 3, len(run.log) - 5} {
		var out bytes.Buffer
		tr := newTrailer(run.nonce, func(_ string, b []byte) error { out.Write(b); return nil })
		tr.write(engine.Stdout, run.log[:cut])
		tr.close()
		tr.write(engine.Stdout, []byte("after close"))
		ok, err := tr.resume(bytes.NewReader(run.log))
		if !ok || err != nil {
			t.Fatalf("resume after %d bytes: %v %v", cut, ok, err)
		}
		tr.finish()
		files, err := tr.files([]string{"n.txt"}, run.message)
		if err != nil || len(files) != 1 || !strings.HasSuffix(string(files[0].Content), "\n2999\n3000\n") {
			t.Fatalf("resume after %d bytes: %v, %v", cut, len(files), err)
		}
		seq, _ := exec.Command("seq", "1", "2000").Output()
		if out.String() != string(seq) {
			t.Fatalf("resume after %d bytes: the output is not the command's whole", cut)
		}
	}
	tr := newTrailer(run.nonce, func(string, []byte) error { return nil })
	tr.write(engine.Stdout, []byte("something else"))
	tr.close()
	if ok, _ := tr.resume(bytes.NewReader(run.log)); ok {
		t.Fatal("a log that does not begin with what was read was taken up")
	}
}

// FuzzTrailer feeds any log to the trailer, whole and in chunks: it never
// panics, hands out the same output and the same files however the log is
// cut into chunks, hands out the log whole when no begin line is in it,
// and gives only requested files within the limit.
func FuzzTrailer(f *testing.F) {
	const nonce = "0123456789abcdef0123456789abcdef"
	begin := filesOutBegin + " " + nonce + "\n"
	end := filesOutEnd + " " + nonce + " "
	f.Add([]byte("out\n"+begin+"file 3 644 a\nYWJj\n"+end+"1\n"), uint8(1))
	f.Add([]byte(begin+"file 3 755 b\nYWJj\nfile 0 644 a\n"+end+"2\nafter\n"), uint8(5))
	f.Add([]byte("x"+begin+"toolarge 9999999 a\n"+end+"1\n"), uint8(2))
	f.Add([]byte(begin+"unreadable b\n"+end+"1\n"), uint8(3))
	f.Add([]byte(begin+"file 3 644 a\nYW\nJj\n"+end+"1"), uint8(7))
	f.Add([]byte("palvella-files-out-begin 0123"), uint8(4))
	f.Add([]byte(begin+"file 3 644 a\nYWJj\nfile 3 644 a\nYWJj\n"+end+"2\n"), uint8(9))
	// An end line that never ends, read a byte at a time: the newline is
	// looked for in the new bytes only (scanning the whole line again at
	// each chunk made the fuzzer stall on such inputs). Kept small so
	// that the fuzzer's mutations of it stay fast.
	f.Add([]byte(begin+end+strings.Repeat("9", 32<<10)), uint8(0))
	f.Fuzz(func(t *testing.T, log []byte, chunk uint8) {
		requested := []string{"a", "b"}
		out1, files1, err1 := readTrailer(nonce, log, 0, requested, "")
		out2, files2, err2 := readTrailer(nonce, log, int(chunk)+1, requested, "")
		if out1 != out2 || (err1 == nil) != (err2 == nil) || len(files1) != len(files2) {
			t.Fatalf("whole: %q %d %v; in chunks of %d: %q %d %v", out1, len(files1), err1, int(chunk)+1, out2, len(files2), err2)
		}
		if !bytes.Contains(log, []byte(begin)) && (out1 != string(log) || files1 != nil || err1 != nil) {
			t.Fatalf("no begin line: output %q, files %v, %v", out1, files1, err1)
		}
		if err1 != nil {
			if !strings.Contains(err1.Error(), "files_out") {
				t.Fatalf("an error not naming files_out: %v", err1)
			}
			return
		}
		total := 0
		seen := map[string]bool{}
		for i, f := range files1 {
			if f.Path != "a" && f.Path != "b" || seen[f.Path] || !bytes.Equal(f.Content, files2[i].Content) {
				t.Fatalf("file %q (twice: %v)", f.Path, seen[f.Path])
			}
			seen[f.Path] = true
			total += len(f.Content)
		}
		if total > maxFilesOut {
			t.Fatalf("%d bytes of files", total)
		}
	})
}

// The files out of a command on a real control plane: the engine makes
// the pod and its Secret; the test plays the container runtime, running
// the pod's command (the wrapper and the script, with the environment of
// the Secret) with a real sh and handing its stdout to kwok as the
// container's log, which kwok's kubelet server serves through the
// apiserver in the kubelet's format. The engine reads it as it would a
// real container's: the output comes out whole, the files of 2 MiB come
// back, the exit code is the pod's.
func TestFilesOutThroughTheAPIServersLog_KwokServedLog(t *testing.T) {
	c := k8stest.Shared(t)
	cs := clientset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := k8stest.ServedLogNamespace
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for {
		if _, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("no default service account in", ns)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := c.WriteServedLog(nil); err != nil {
		t.Fatal(err)
	}
	p := newEngine(t, ns, nil)
	ws := setup(t, p, exitCode("3"))

	// The runtime: the command's pod (of exec ID id), run here once it
	// exists; its log is what it printed, through keep.
	root := t.TempDir()
	runtime := func(id string, keep func([]byte) []byte) <-chan error {
		ran := make(chan error, 1)
		go func() { ran <- runPodCommand(ctx, t, c, cs, ns, id, root, keep) }()
		return ran
	}
	whole := func(b []byte) []byte { return b }

	ran := runtime("whole", whole)
	start := time.Now()
	res, out, errOut := execText(t, p, &engine.ExecRequest{
		WorkspaceID: ws.ID, ExecID: "whole",
		Script:   "echo building; seq 1 400000 > art.txt; printf 'k=v\\n' > outputs.env; printf done; exit 3",
		FilesOut: []string{"art.txt", "outputs.env", "missing"},
	})
	if err := <-ran; err != nil {
		t.Fatalf("running the pod's command: %v", err)
	}
	t.Logf("Exec took %v", time.Since(start))
	if res.ExitCode != 3 || out != "building\ndone" {
		t.Fatalf("exit %d, output %q (stderr %q); want 3 and the command's output whole", res.ExitCode, out, errOut)
	}
	seq, err := os.ReadFile(filepath.Join(root, "art.txt"))
	if err != nil || len(seq) < 2<<20 {
		t.Fatalf("art.txt: %v, %d bytes", err, len(seq))
	}
	if len(res.FilesOut) != 2 || res.FilesOut[0].Path != "art.txt" || !bytes.Equal(res.FilesOut[0].Content, seq) ||
		res.FilesOut[1].Path != "outputs.env" || string(res.FilesOut[1].Content) != "k=v\n" {
		var got []string
		for _, f := range res.FilesOut {
			got = append(got, fmt.Sprintf("%s (%d bytes)", f.Path, len(f.Content)))
		}
		t.Fatalf("files out %v; want art.txt (%d bytes) and outputs.env whole", got, len(seq))
	}

	// The log cut in the middle of the files (a container killed while
	// writing them): the output comes out, the files are refused naming
	// files_out.
	if err := c.WriteServedLog(nil); err != nil {
		t.Fatal(err)
	}
	ran = runtime("cut", func(b []byte) []byte { return b[:len(b)/2] })
	var cutOut bytes.Buffer
	_, err = p.Exec(ctx, &engine.ExecRequest{WorkspaceID: ws.ID, ExecID: "cut", Script: "echo building; seq 1 400000 > art.txt; exit 3", FilesOut: []string{"art.txt"}},
		func(_ string, b []byte) error { cutOut.Write(b); return nil })
	if rerr := <-ran; rerr != nil {
		t.Fatalf("running the pod's command: %v", rerr)
	}
	if !errors.Is(err, sdk.ErrInternal) || !strings.Contains(err.Error(), "files_out") || !strings.Contains(err.Error(), "cut") || cutOut.String() != "building\n" {
		t.Fatalf("a log cut in the files: %v, output %q; want the files refused as cut, naming files_out, and the output whole", err, cutOut.String())
	}
}

// runPodCommand plays the container runtime for the command pod of exec
// ID id in ns: it runs the pod's command with a real sh in root, with the
// environment the pod takes from its Secret, and writes what it printed
// (through keep) as the log kwok serves.
func runPodCommand(ctx context.Context, t *testing.T, c *k8stest.Cluster, cs kubernetes.Interface, ns, id, root string, keep func([]byte) []byte) error {
	var pod *corev1.Pod
	for pod == nil {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labelExec + "=" + id})
		if err != nil {
			return err
		}
		if len(pods.Items) > 0 {
			pod = &pods.Items[0]
		} else if ctx.Err() != nil {
			return ctx.Err()
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	ctr := pod.Spec.Containers[0]
	secret, err := cs.CoreV1().Secrets(ns).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	argv := slices.Clone(ctr.Command)
	if len(argv) < 7 || argv[0] != "sh" || argv[4] != ctr.WorkingDir || argv[5] != terminationLog {
		return fmt.Errorf("the pod's command %q is not the wrapper's", argv)
	}
	argv[4], argv[5] = root, filepath.Join(t.TempDir(), "termination-log")
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = root
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for _, e := range ctr.Env {
		cmd.Env = append(cmd.Env, e.Name+"="+string(secret.Data[e.ValueFrom.SecretKeyRef.Key]))
	}
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			return fmt.Errorf("the pod's command: %v", err)
		}
	}
	return c.WriteServedLog(keep(log.Bytes()))
}
