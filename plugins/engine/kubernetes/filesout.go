package kubernetes

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"sync"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
	corev1 "k8s.io/api/core/v1"
)

// A command's files out come back at the end of its container's log, the
// stream the engine already reads for the command's output: after the
// command, an sh wrapper writes each requested regular file, base64,
// between a begin and an end line that carry a nonce made for this
// command. The engine forwards the log up to the begin line and decodes
// what follows. It needs no pods/exec right, no volume it can read, no
// service the pod must reach, and the files are not held to the 4096
// bytes of a termination message (which the files used to come back in).
//
// The nonce is why output cannot pass for files: the engine looks for
// the begin line with this command's nonce, 128 random bits the command's
// output cannot contain unless it knows them. The wrapper takes it from
// its environment and unsets it before it starts the command, so neither
// the command's environment nor `ps` shows it (a process of the job that
// reads /proc/1/environ can find it; such a process can also write the
// files themselves, so it gains nothing). The engine takes only the
// requested paths, each once, and refuses a trailer that is cut, mixed
// with other output or of the wrong sizes, naming files_out.
// docs/design/kubernetes-engine.md, "Files out".
const (
	terminationLog   = "/dev/termination-log"
	filesOutEnv      = "PALVELLA_FILES_OUT"
	filesOutNonceEnv = "PALVELLA_FILES_OUT_NONCE"
	filesOutMaxEnv   = "PALVELLA_FILES_OUT_MAX"
	filesOutBegin    = "palvella-files-out-begin"
	filesOutEnd      = "palvella-files-out-end"
	// filesOutMessage begins the termination message the wrapper writes
	// once the files are in the log.
	filesOutMessage = "palvella-files-out:"
	// maxFilesOut bounds the files a command sends back, as on the other
	// engines, so the result fits in one gRPC message.
	maxFilesOut = 3 << 20
)

// filesOutScript takes the nonce, the paths (one a line, relative to the
// workspace root $1) and the limit from its environment and unsets them,
// runs the command ("$@"), then writes to stdout a begin line, for each
// path that is a regular file (not a symbolic link) a line "file SIZE
// MODE PATH" and its base64 (or "toolarge SIZE PATH" past the limit,
// "unreadable PATH"), and an end line with the number of entries; then a
// short termination message to $2, and exits with the command's status.
// It needs sh, wc and base64 in the image (busybox, Alpine, Debian and
// most images have them). The script text never holds a whole begin
// line, so printing it (ps) cannot make one.
const filesOutScript = `root=$1 msg=$2; shift 2
nonce=$` + filesOutNonceEnv + ` files=$` + filesOutEnv + ` max=$` + filesOutMaxEnv + `
unset ` + filesOutNonceEnv + ` ` + filesOutEnv + ` ` + filesOutMaxEnv + `
"$@"; code=$?
printf '%s\n' "$files" | {
  n=0 total=0
  printf '%s %s\n' ` + filesOutBegin + ` "$nonce"
  while IFS= read -r f; do
    p=$root/$f
    [ -n "$f" ] && [ -f "$p" ] && [ ! -h "$p" ] || continue
    n=$((n + 1))
    if [ ! -r "$p" ]; then printf 'unreadable %s\n' "$f"; continue; fi
    size=$(($(wc -c < "$p")))
    if [ $((total + size)) -gt "$max" ]; then printf 'toolarge %s %s\n' "$size" "$f"; continue; fi
    total=$((total + size))
    mode=644; [ -x "$p" ] && mode=755
    printf 'file %s %s %s\n' "$size" "$mode" "$f"
    base64 < "$p"
  done
  printf '%s %s %s\n' ` + filesOutEnd + ` "$nonce" "$n"
  printf '` + filesOutMessage + ` %s files, %s bytes, in the log\n' "$n" "$total" > "$msg"
} 2>/dev/null
exit $code`

// withFilesOut wraps argv so that the files come back at the end of the
// log; it returns the wrapped argv, the environment it needs and the
// nonce.
func withFilesOut(argv []string, root string, files []string) ([]string, map[string]string, string, error) {
	var uniq []string
	seen := map[string]bool{}
	for i, f := range files {
		if strings.ContainsAny(f, "\n\x00") {
			return nil, nil, "", sdk.Errorf(sdk.ErrInvalidArgument, fmt.Sprintf("files_out[%d]", i), "a path of a file out must be one line")
		}
		if !seen[f] {
			seen[f] = true
			uniq = append(uniq, f)
		}
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, nil, "", fmt.Errorf("kubernetes engine: a nonce for the files out: %w", err)
	}
	nonce := hex.EncodeToString(b[:])
	wrapped := append([]string{"sh", "-c", filesOutScript, "palvella-files-out", root, terminationLog}, argv...)
	env := map[string]string{
		filesOutEnv:      strings.Join(uniq, "\n"),
		filesOutNonceEnv: nonce,
		filesOutMaxEnv:   strconv.Itoa(maxFilesOut),
	}
	return wrapped, env, nonce, nil
}

// filesOut stops taking the followed log and returns the files its
// trailer carries (none when want is false: the command was stopped).
// When the stream did not bring the whole trailer (it broke, or did not
// end, as kwok's never does), the log of the ended container is read once
// more and taken up where the stream stopped: the output that was missing
// is handed out too.
func (ws *workspace) filesOut(ctx context.Context, name string, tr *trailer, requested []string, message string, want bool) ([]engine.File, error) {
	tr.close()
	if want && !tr.isComplete() {
		rc, err := ws.cl.cs.CoreV1().Pods(ws.ns).GetLogs(name, &corev1.PodLogOptions{Container: commandContainer}).Stream(ctx)
		if err == nil {
			_, err = tr.resume(rc)
			rc.Close()
			var oe outputError
			if errors.As(err, &oe) {
				return nil, fmt.Errorf("kubernetes engine: exec: output: %w", oe.err)
			}
		}
	}
	if err := tr.finish(); err != nil {
		return nil, fmt.Errorf("kubernetes engine: exec: output: %w", err)
	}
	if !want {
		return nil, nil
	}
	return tr.files(requested, message)
}

// trailerState is where a log is, for its trailer.
type trailerState int

const (
	// forwarding: no begin line yet; the log is the command's output.
	forwarding trailerState = iota
	// holding: after the begin line, before the end line.
	holding
	// complete: the end line came; what follows is output again (a
	// process the command left in the background).
	complete
)

// maxTrailer bounds what a trailer may hold: the files' base64 and a line
// for each. Past it the trailer is refused; the wrapper stops at
// maxFilesOut before that.
const maxTrailer = maxFilesOut/3*4 + 1<<20

// trailer reads a command's log as it comes: it hands out what comes
// before the begin line, holds from there to the end line, and gives the
// files the held lines carry. It also keeps how many bytes of the log it
// has read and their digest, so that a log read again (when the stream
// broke) goes on where it stopped. Its methods are safe to call from the
// log reader and from Exec.
type trailer struct {
	begin    []byte // the begin line
	endStart []byte // the start of the end line
	out      func(stream string, b []byte) error

	mu       sync.Mutex
	closed   bool
	state    trailerState
	pending  []byte // the end of the output, which may be the start of the begin line
	held     []byte
	endAt    int    // where in held the end line starts, or -1
	body     []byte // the lines between the begin and the end lines
	count    int    // the number of entries the end line says
	overflow bool
	read     int64
	sum      hash.Hash
	done     chan struct{}
}

func newTrailer(nonce string, out func(stream string, b []byte) error) *trailer {
	return &trailer{
		begin:    []byte(filesOutBegin + " " + nonce + "\n"),
		endStart: []byte(filesOutEnd + " " + nonce + " "),
		out:      out,
		sum:      sha256.New(),
		endAt:    -1,
		done:     make(chan struct{}),
	}
}

// Done is closed once the end line came.
func (t *trailer) Done() <-chan struct{} { return t.done }

// write takes the next bytes of the log (the command's stdout and
// stderr); what the engine writes to stderr itself passes through.
func (t *trailer) write(stream string, p []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	if stream != engine.Stdout {
		return t.out(stream, p)
	}
	return t.writeLocked(p)
}

func (t *trailer) writeLocked(p []byte) error {
	t.read += int64(len(p))
	t.sum.Write(p)
	switch t.state {
	case forwarding:
		buf := append(t.pending, p...)
		t.pending = nil
		if i := bytes.Index(buf, t.begin); i >= 0 {
			t.state = holding
			if err := t.emit(buf[:i]); err != nil {
				return err
			}
			return t.hold(buf[i+len(t.begin):])
		}
		// Keep back an end that may be the start of the begin line.
		keep := partialPrefix(buf, t.begin)
		t.pending = append([]byte(nil), buf[len(buf)-keep:]...)
		return t.emit(buf[:len(buf)-keep])
	case holding:
		return t.hold(p)
	default:
		return t.emit(p)
	}
}

// partialPrefix is the length of the longest end of buf that is a proper
// start of needle.
func partialPrefix(buf, needle []byte) int {
	n := min(len(buf), len(needle)-1)
	for ; n > 0; n-- {
		if bytes.HasPrefix(needle, buf[len(buf)-n:]) {
			return n
		}
	}
	return 0
}

func (t *trailer) emit(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return t.out(engine.Stdout, append([]byte(nil), b...))
}

// hold keeps p as part of the trailer and ends the trailer at its end
// line.
func (t *trailer) hold(p []byte) error {
	if t.overflow {
		return nil
	}
	from := max(0, len(t.held)-len(t.endStart))
	t.held = append(t.held, p...)
	if t.endAt < 0 {
		if i := bytes.Index(t.held[from:], t.endStart); i >= 0 {
			t.endAt = from + i
		}
	}
	if t.endAt >= 0 {
		// The newline that ends the end line, looked for only in what
		// is new (a long end line read in small chunks stays linear).
		at := max(t.endAt, from)
		if nl := bytes.IndexByte(t.held[at:], '\n'); nl >= 0 {
			nl += at
			count, err := strconv.Atoi(string(t.held[t.endAt+len(t.endStart) : nl]))
			if err != nil || count < 0 {
				count = -1
			}
			t.body, t.count = t.held[:t.endAt], count
			after := t.held[nl+1:]
			t.held = nil
			t.state = complete
			close(t.done)
			return t.emit(after)
		}
	}
	if len(t.held) > maxTrailer {
		t.overflow = true
		t.held = nil
	}
	return nil
}

// close stops taking bytes from the log reader, which may still be
// running.
func (t *trailer) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
}

// finish hands out the output kept back in case it began the begin line.
func (t *trailer) finish() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	if t.state == forwarding && len(t.pending) > 0 {
		p := t.pending
		t.pending = nil
		return t.emit(p)
	}
	return nil
}

// isComplete says whether the end line came.
func (t *trailer) isComplete() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state == complete
}

// resume reads the log again from its start (the stream that was
// followed broke or did not end): the bytes already read are skipped
// once their digest is checked, the rest are taken as if they had come
// on the stream. It reports false when the log does not begin with what
// was read (the kubelet rotated it in between).
func (t *trailer) resume(r io.Reader) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := sha256.New()
	if n, err := io.CopyN(h, r, t.read); err != nil || n != t.read || !bytes.Equal(h.Sum(nil), t.sum.Sum(nil)) {
		return false, nil
	}
	buf := make([]byte, 32<<10)
	for t.state != complete {
		n, err := r.Read(buf)
		if n > 0 {
			if werr := t.writeLocked(buf[:n]); werr != nil {
				return true, outputError{werr}
			}
		}
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return true, err
		}
	}
	return true, nil
}

// files are the files the trailer carries, of those requested. message
// is the container's termination message, which says whether the
// wrapper wrote them: a log without a begin line is a command whose
// wrapper did not get that far (killed, or a kwok pod, which runs
// nothing), unless the message says otherwise.
func (t *trailer) files(requested []string, message string) ([]engine.File, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.overflow:
		return nil, sdk.Errorf(sdk.ErrResourceExhausted, "files_out", "the command's files out in its log went past %d bytes without their end line; files out exceed %d MiB in all; keep large artifacts in storage", maxTrailer, maxFilesOut>>20)
	case t.state == holding:
		return nil, sdk.Errorf(sdk.ErrInternal, "files_out", "the command's files out were cut: the pod's log ended %d bytes after their begin line, before their end line (the container was killed while writing them, or the log could not be read to its end)", len(t.held))
	case t.state == forwarding:
		if strings.HasPrefix(message, filesOutMessage) {
			return nil, sdk.Errorf(sdk.ErrInternal, "files_out", "the command wrote its files out to its log (%q) but they were not in the log the engine read (it was cut, or the kubelet rotated it before it was read)", strings.TrimSpace(message))
		}
		return nil, nil
	}
	return parseTrailer(t.body, t.count, requested)
}

// parseTrailer reads the lines between the begin and the end lines:
// entries of the requested paths, each once, with their base64.
func parseTrailer(body []byte, count int, requested []string) ([]engine.File, error) {
	index := map[string]int{}
	for i, r := range requested {
		if _, ok := index[r]; !ok {
			index[r] = i
		}
	}
	if len(body) > 0 && body[len(body)-1] != '\n' {
		return nil, sdk.Errorf(sdk.ErrInternal, "files_out", "the command's files out are mixed with other output: the end line does not begin a line")
	}
	type entry struct {
		field, path string
		size        int
		mode        fs.FileMode
		b64         []byte
	}
	var entries []*entry
	var cur *entry
	taken := map[string]bool{}
	lines := bytes.Split(body, []byte("\n"))
	if len(lines) > 0 {
		lines = lines[:len(lines)-1]
	}
	for n, line := range lines {
		word, rest, _ := bytes.Cut(line, []byte(" "))
		var size, mode, p string
		switch string(word) {
		case "file":
			fields := strings.SplitN(string(rest), " ", 3)
			if len(fields) != 3 {
				return nil, sdk.Errorf(sdk.ErrInternal, "files_out", "the command's files out: line %d, %q, is not \"file SIZE MODE PATH\"", n+1, clip(line))
			}
			size, mode, p = fields[0], fields[1], fields[2]
		case "toolarge":
			size, p, _ = strings.Cut(string(rest), " ")
		case "unreadable":
			p = string(rest)
		default:
			if cur == nil {
				return nil, sdk.Errorf(sdk.ErrInternal, "files_out", "the command's files out are mixed with other output: line %d, %q, is no entry", n+1, clip(line))
			}
			cur.b64 = append(cur.b64, line...)
			continue
		}
		i, ok := index[p]
		if !ok || taken[p] {
			return nil, sdk.Errorf(sdk.ErrInternal, "files_out", "the command's files out: line %d names %q, which is not a requested file or came twice", n+1, clip([]byte(p)))
		}
		taken[p] = true
		field := fmt.Sprintf("files_out[%d]", i)
		switch string(word) {
		case "toolarge":
			return nil, sdk.Errorf(sdk.ErrResourceExhausted, field, "files out exceed %d MiB in all; keep large artifacts in storage", maxFilesOut>>20)
		case "unreadable":
			return nil, sdk.Errorf(sdk.ErrPermissionDenied, field, "the command's user cannot read %s", p)
		}
		sz, err := strconv.Atoi(size)
		if err != nil || sz < 0 || sz > maxFilesOut {
			return nil, sdk.Errorf(sdk.ErrInternal, field, "the command's files out: line %d gives the size %q", n+1, size)
		}
		var m fs.FileMode = 0o644
		switch mode {
		case "644":
		case "755":
			m = 0o755
		default:
			return nil, sdk.Errorf(sdk.ErrInternal, field, "the command's files out: line %d gives the mode %q", n+1, mode)
		}
		cur = &entry{field: field, path: p, size: sz, mode: m, b64: []byte{}}
		entries = append(entries, cur)
	}
	if count != len(entries) {
		return nil, sdk.Errorf(sdk.ErrInternal, "files_out", "the command's files out: the end line counts %d files, the log holds %d", count, len(entries))
	}
	files := make([]engine.File, 0, len(entries))
	total := 0
	for _, e := range entries {
		data, err := base64.StdEncoding.DecodeString(string(e.b64))
		if err != nil {
			return nil, sdk.Errorf(sdk.ErrInternal, e.field, "the command's file out %s is not whole base64 in the log (mixed with other output, or the image has no base64): %v", e.path, err)
		}
		if len(data) != e.size {
			return nil, sdk.Errorf(sdk.ErrInternal, e.field, "the command's file out %s came back with %d bytes of its %d (it changed while it was read, or the image has no base64)", e.path, len(data), e.size)
		}
		if total += len(data); total > maxFilesOut {
			return nil, sdk.Errorf(sdk.ErrResourceExhausted, e.field, "files out exceed %d MiB in all; keep large artifacts in storage", maxFilesOut>>20)
		}
		clean, err := engine.CleanPath(e.field, e.path, false)
		if err != nil {
			return nil, err
		}
		files = append(files, engine.File{Path: clean, Content: data, Mode: e.mode})
	}
	return files, nil
}

// clip shortens a line quoted in a message.
func clip(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}
