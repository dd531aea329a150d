package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"github.com/palvella/palvella/plugin-sdk/engine"
)

// The job's first command is run by the job's container's own first
// process, not by an exec: Setup creates the container without starting
// it, and the first command of the job's image starts it with the
// command's script on its stdin. A trivial job then costs what a bare
// `docker run` does (create, attach, start) instead of that plus an exec
// (create, start, inspect: a `runc exec` each time, 80 to 220 ms on a
// loaded machine). The container lives on as the holder of the later
// commands, which run as execs (jobexec.go).

// bootScript is the holder's program: it reads a script from its stdin
// (none when the holder is started for no command: stdin then stays
// open and unread, and sh waits on it), runs it, then sleeps for the
// job's lifetime. Only sh's builtins and sleep are used, as before. The
// last exec leaves no copy of the first command's script (its
// environment) in the memory of a process the later commands could read.
const bootScript = `s=
while IFS= read -r l; do s="$s$l
"; done
[ -z "$s" ] || eval "$s"
exec sh -c 'while :; do sleep 3600; done'`

// endMark starts the line the first command's script writes on stdout and
// on stderr once the command is over, followed by its nonce, its exit
// status and a newline: the container's output goes on after it (the
// holder lives on), so the end of the stream cannot tell.
const endMark = "\x1ePALVELLA-END-"

var shellName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// shellReadonly are variables a shell may hold read-only (bash as sh):
// exporting one fails the script, where an exec's environment sets it
// without complaint.
var shellReadonly = map[string]bool{"BASHOPTS": true, "BASH_VERSINFO": true, "EUID": true, "PPID": true, "SHELLOPTS": true, "UID": true}

// shQuote quotes s for sh.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// firstScript is the script that runs a command as the holder's first
// process would in an exec: its environment over the job's, its marker,
// its working directory, the wrapper, no stdin; then the end marks with
// its status. ok is false when a variable's name is not one sh can
// export (an exec takes any), or one a shell may hold read-only: such a
// command runs as an exec.
func firstScript(argv []string, env map[string]string, mark, workdir, nonce string) (string, bool) {
	var b strings.Builder
	b.WriteString("(")
	for _, k := range sortedKeys(env) {
		if !shellName.MatchString(k) || shellReadonly[k] {
			return "", false
		}
		fmt.Fprintf(&b, "export %s=%s; ", k, shQuote(env[k]))
	}
	fmt.Fprintf(&b, "export %s; cd %s || exit 126; exec sh -c %s sh", shQuote(mark), shQuote(workdir), shQuote(wrapper))
	for _, a := range argv {
		b.WriteString(" " + shQuote(a))
	}
	fmt.Fprintf(&b, ") </dev/null\nc=$?\nprintf '%%s%%s %%d\\n' %s %s \"$c\"\nprintf '%%s%%s %%d\\n' %s %s \"$c\" >&2\n",
		shQuote(endMark), nonce, shQuote(endMark), nonce)
	return b.String(), true
}

// execFirst runs req as the holder's first process when no command
// started the holder yet. ran is false, with no error, when it did not:
// the holder runs already or cannot (then Exec runs req another way).
func (p *Plugin) execFirst(ctx context.Context, ws *workspace, req *engine.ExecRequest, out func(string, []byte) error) (res *engine.ExecResult, ran bool, err error) {
	ws.startMu.Lock()
	locked := true
	unlock := func() {
		if locked {
			locked = false
			ws.startMu.Unlock()
		}
	}
	defer unlock()
	if ws.holder == "" || ws.started || ws.booted {
		return nil, false, nil
	}
	holder := ws.holder
	argv, cmdEnv, workdir, err := ws.command(req)
	if err != nil {
		return nil, false, err
	}
	mark := execMarker + "=" + randomID(24)
	nonce := randomID(16)
	script, ok := firstScript(argv, cmdEnv, mark, workdir, nonce)
	if !ok {
		return nil, false, nil
	}
	c := ws.d.c
	// The workspace volume is mounted for a copy into a created container.
	if tarball := filesInTar(req); tarball != nil {
		if _, err := c.CopyToContainer(ctx, holder, client.CopyToContainerOptions{DestinationPath: ws.workdir, Content: tarball, CopyUIDGID: ws.params.user != ""}); err != nil {
			return nil, true, ctxOr(ctx, fmt.Errorf("docker engine: copy files into the workspace: %w", err))
		}
	}
	r := &run{ws: ws, id: holder, mark: mark, ended: make(chan struct{})}
	unregister, cancelled, err := ws.register(req, r)
	if cancelled != nil || err != nil {
		return cancelled, true, err
	}
	defer unregister()

	att, err := c.ContainerAttach(ctx, holder, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		return nil, true, ctxOr(ctx, fmt.Errorf("docker engine: attach to the job's container: %w", err))
	}
	defer att.Close()
	ws.booted = true
	// dropHolder removes the holder, in a state no later command should
	// rely on; the job's other commands, if any, get containers of their
	// own.
	dropHolder := func() {
		if rerr := ws.remove(context.WithoutCancel(ctx), holder); rerr != nil {
			ws.log.Warn("remove the job's container", "container", holder, "error", rerr)
		}
		ws.holder = ""
	}
	if err := ws.startLocked(ctx); err != nil {
		// The caller gave up during the start, which may still go through
		// at the daemon: the container goes, so that nothing of the
		// command can run after its caller gave up.
		dropHolder()
		return nil, true, err
	}
	if ws.holder == "" {
		return nil, false, nil // the image cannot run sh: Exec runs req in a container of its own
	}
	// The script goes to the running container's sh, which reads it as it
	// comes (written before the start, a script larger than the pipes'
	// buffers would wait for a reader that is not there yet); the end of
	// the attach's input closes the container's stdin (StdinOnce). The
	// caller giving up stops the write.
	stopWrite := context.AfterFunc(ctx, func() { att.Conn.SetWriteDeadline(time.Now()) })
	att.Conn.SetWriteDeadline(time.Now().Add(time.Minute))
	_, err = att.Conn.Write([]byte(script))
	if err == nil {
		err = att.CloseWrite()
	}
	stopWrite()
	if err != nil {
		dropHolder()
		return nil, true, ctxOr(ctx, fmt.Errorf("docker engine: send the command to the job's container: %w", err))
	}
	unlock()

	ended := sync.OnceFunc(func() { close(r.ended) })
	defer ended()
	r.readerGone = ended // no end mark comes once the output is no longer read
	m := &endMarks{prefix: []byte(endMark + nonce + " "), out: out, done: func() { ended(); att.Close() }}
	if err := r.follow(ctx, req.Timeout, att.Reader, att.Close, m.write); err != nil {
		return nil, true, err
	}
	code, ok := m.status()
	if !ok {
		// The stream ended without the marks: the holder's first process
		// ended (the container was killed, or went out of memory), and its
		// status is the command's; the next command starts it again. Or
		// the connection to the daemon broke while the container runs:
		// the command is stopped, as it can no longer be followed.
		ins, err := c.ContainerInspect(context.WithoutCancel(ctx), holder, client.ContainerInspectOptions{})
		if err != nil {
			return nil, true, ctxOr(ctx, fmt.Errorf("docker engine: wait for the command: %w", err))
		}
		if st := ins.Container.State; st != nil && st.Running {
			ended()
			r.stop(stoppedByContext)
			return nil, true, ctxOr(ctx, errors.New("docker engine: the command's output ended while its container runs (the connection to the daemon broke?); the command was stopped"))
		}
		code = 137
		if st := ins.Container.State; st != nil && st.ExitCode != 0 {
			code = st.ExitCode
		}
		ws.holderStopped()
	}
	res = r.result(int64(code))
	if len(req.FilesOut) > 0 {
		files, err := ws.filesOut(ctx, holder, req.FilesOut)
		if err != nil {
			return nil, true, ctxOr(ctx, err)
		}
		res.FilesOut = files
	}
	return res, true, nil
}

// endMarks passes the first command's output on to out without the end
// marks, and reads its status from them. Bytes that may be the start of a
// mark are held back until the next bytes of their stream say.
type endMarks struct {
	prefix []byte
	out    func(string, []byte) error
	done   func() // called once both streams are marked

	mu    sync.Mutex
	pend  [2][]byte
	ended [2]bool
	code  int
	bad   bool
}

func streamIndex(stream string) int {
	if stream == engine.Stderr {
		return 1
	}
	return 0
}

func (m *endMarks) write(stream string, b []byte) error {
	i := streamIndex(stream)
	m.mu.Lock()
	if m.ended[i] {
		m.mu.Unlock()
		return nil
	}
	data := append(m.pend[i], b...)
	m.pend[i] = nil
	emit := data
	if at := bytes.Index(data, m.prefix); at >= 0 {
		emit = data[:at]
		rest := data[at+len(m.prefix):]
		if nl := bytes.IndexByte(rest, '\n'); nl >= 0 {
			code, err := strconv.Atoi(string(rest[:nl]))
			if err != nil {
				m.bad = true
			}
			if i == 0 {
				m.code = code
			}
			m.ended[i] = true
		} else {
			m.pend[i] = data[at:]
		}
	} else {
		// Hold back the longest end of data that begins the prefix.
		for k := min(len(m.prefix)-1, len(data)); k > 0; k-- {
			if bytes.HasSuffix(data, m.prefix[:k]) {
				emit, m.pend[i] = data[:len(data)-k], bytes.Clone(data[len(data)-k:])
				break
			}
		}
	}
	both := m.ended[0] && m.ended[1]
	m.mu.Unlock()
	if len(emit) > 0 {
		if err := m.out(stream, emit); err != nil {
			return err
		}
	}
	if both {
		m.done()
	}
	return nil
}

// status is the command's exit status, when both marks were read.
func (m *endMarks) status() (int, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.code, m.ended[0] && m.ended[1] && !m.bad
}
