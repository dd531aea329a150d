package standard

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/action"
)

// MaxStdout is how much of a script's standard output the run action keeps
// as its stdout output: the last 64 KiB.
const MaxStdout = 64 << 10

// maxLogLine splits lines longer than this into several log lines; the
// stream of each piece after the first ends with continued ("stdout+"),
// as the core marks the lines it splits.
const maxLogLine = 64 << 10

const continued = "+"

// wrapper prepares $PALVELLA_OUTPUT in the working directory and runs the
// user's shell with the script, so it works with any shell (bash, python
// -c...). $1 is the outputs file, relative to the working directory; the
// rest is the shell and the script. It uses shell builtins only: every
// extra process would cost a fork and an exec on each action.
const wrapper = `PALVELLA_OUTPUT="$PWD/$1"; shift
: > "$PALVELLA_OUTPUT" || exit 125
export PALVELLA_OUTPUT
exec "$@"`

// defaultShell is what a run action's script runs with unless its shell
// param says otherwise.
var defaultShell = []string{"sh", "-e", "-c"}

// inlinePrelude prepares $PALVELLA_OUTPUT as wrapper does, on one line
// without a newline: the script's first line follows it on the same line.
const inlinePrelude = `PALVELLA_OUTPUT="$PWD/` + outputsFile + `"; export PALVELLA_OUTPUT; : > "$PALVELLA_OUTPUT" || exit 125; `

// outputsFile is the outputs file's name in the working directory. Actions
// of a job run one after another, and each empties it first, so one file
// serves them all; it goes with the workspace.
const outputsFile = ".palvella-outputs"

// collect prints the outputs file and removes it.
const collect = `cat -- "$1" 2>/dev/null; rm -f -- "$1"`

func (p *Plugin) runScript(ctx context.Context, req *action.RunRequest, events action.Events) (*action.Result, error) {
	script, err := reqString(req.Params, "run")
	if err != nil {
		return nil, err
	}
	shell, err := shellArgs(req.Params)
	if err != nil {
		return nil, err
	}
	env, err := envMap(req.Params, "env")
	if err != nil {
		return nil, err
	}
	workdir, err := optString(req.Params, "workdir", "")
	if err != nil {
		return nil, err
	}
	p.mu.RLock()
	host := p.host
	p.mu.RUnlock()
	if host == nil {
		return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "", "the run action needs the host's engine to run its script, and this plugin was configured without host services")
	}

	sink := newLogSink(events)
	argv := append([]string{"sh", "-c", wrapper, "palvella-run", outputsFile}, shell...)
	argv = append(argv, script)
	if slices.Equal(shell, defaultShell) {
		// The default shell prepares $PALVELLA_OUTPUT itself, on the
		// script's first line (so that its line numbers stay), instead of
		// a wrapper that execs it: one exec of sh less an action.
		argv = append(slices.Clip(shell), inlinePrelude+script)
	}
	// The outputs file comes back with the command's result; a host that
	// does not return files is asked with a second command.
	outputsPath := path.Join(workdir, outputsFile)
	res, err := host.Exec(ctx, &sdk.HostExecRequest{Command: argv, Env: env, Workdir: workdir, FilesOut: []string{outputsPath}}, sink.write)
	sink.flush()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("run action %q: exec on the job's engine: %w", req.Name, err)
	}
	if err := sink.failed(); err != nil {
		return nil, fmt.Errorf("run action %q: stream log: %w", req.Name, err)
	}

	outputs := map[string]any{}
	result := &action.Result{Status: action.StatusSuccess, Outputs: outputs}
	var fileOutputs map[string]any
	var ferr error
	if content, ok := res.FilesOut[outputsPath]; ok {
		fileOutputs, ferr = outputsFrom(content)
	} else {
		fileOutputs, ferr = p.readOutputs(ctx, host, outputsFile, workdir)
	}
	if ferr != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		result.Status, result.Message = action.StatusFailure, ferr.Error()
		_ = events.Log(action.StreamSystem, ferr.Error()) // best effort: the result says it too
	}
	for k, v := range fileOutputs {
		outputs[k] = v
	}
	outputs["stdout"] = sink.stdout()
	outputs["exit_code"] = res.ExitCode
	switch {
	case res.Cancelled:
		result.Status, result.Message = action.StatusCancelled, "the script was cancelled"
	case res.TimedOut:
		result.Status, result.Message = action.StatusFailure, "the script timed out"
	case res.ExitCode != 0:
		result.Status, result.Message = action.StatusFailure, fmt.Sprintf("the script exited with code %d", res.ExitCode)
	}
	for k, v := range outputs {
		if err := events.Output(k, v); err != nil {
			return nil, fmt.Errorf("run action %q: send output %q: %w", req.Name, k, err)
		}
	}
	return result, nil
}

// readOutputs fetches and parses the outputs file with a second command in
// the same working directory, so it works on every engine.
func (p *Plugin) readOutputs(ctx context.Context, host sdk.Host, file, workdir string) (map[string]any, error) {
	var buf bytes.Buffer
	tooBig := false
	res, err := host.Exec(ctx, &sdk.HostExecRequest{Command: []string{"sh", "-c", collect, "sh", file}, Workdir: workdir}, func(stream string, data []byte) {
		if stream != action.StreamStdout || tooBig {
			return
		}
		if buf.Len()+len(data) > maxOutputsFile {
			tooBig = true
			return
		}
		buf.Write(data)
	})
	if err != nil {
		return nil, fmt.Errorf("read $PALVELLA_OUTPUT: %w", err)
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("read $PALVELLA_OUTPUT: exit code %d", res.ExitCode)
	}
	if tooBig {
		return nil, fmt.Errorf("$PALVELLA_OUTPUT is larger than %d bytes", maxOutputsFile)
	}
	return outputsFrom(buf.Bytes())
}

// outputsFrom parses the content of an outputs file.
func outputsFrom(content []byte) (map[string]any, error) {
	if len(content) > maxOutputsFile {
		return nil, fmt.Errorf("$PALVELLA_OUTPUT is larger than %d bytes", maxOutputsFile)
	}
	out, err := parseOutputs(string(content))
	if err != nil {
		return nil, fmt.Errorf("$PALVELLA_OUTPUT: %w", err)
	}
	return out, nil
}

// logSink turns the engine's output chunks into log lines and keeps the
// tail of stdout. The engine may call write from several goroutines.
type logSink struct {
	events action.Events

	mu      sync.Mutex
	partial map[string][]byte
	// cont marks the streams whose next line continues a split one.
	cont map[string]bool
	tail []byte
	err  error
}

func newLogSink(events action.Events) *logSink {
	return &logSink{events: events, partial: map[string][]byte{}, cont: map[string]bool{}}
}

func (s *logSink) write(stream string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if stream == action.StreamStdout {
		s.tail = append(s.tail, data...)
		if over := len(s.tail) - MaxStdout; over > 0 {
			s.tail = append(s.tail[:0], s.tail[over:]...)
		}
	}
	buf := append(s.partial[stream], data...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			if len(buf) < maxLogLine {
				break
			}
			// Split at a character's start, so that no piece breaks one.
			i = maxLogLine
			for i < len(buf) && i > maxLogLine-utf8.UTFMax && !utf8.RuneStart(buf[i]) {
				i--
			}
			s.emit(stream, buf[:i])
			s.cont[stream] = true
			buf = buf[i:]
			continue
		}
		if i > 0 || !s.cont[stream] { // a split line may end where it was split
			s.emit(stream, buf[:i])
		}
		s.cont[stream] = false
		buf = buf[i+1:]
	}
	s.partial[stream] = append([]byte(nil), buf...)
}

func (s *logSink) emit(stream string, line []byte) {
	if s.err != nil {
		return
	}
	text := strings.ToValidUTF8(strings.TrimSuffix(string(line), "\r"), "\uFFFD")
	if s.cont[stream] {
		stream += continued
	}
	s.err = s.events.Log(stream, text)
}

func (s *logSink) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for stream, rest := range s.partial {
		if len(rest) > 0 {
			s.emit(stream, rest)
		}
		delete(s.partial, stream)
		delete(s.cont, stream)
	}
}

func (s *logSink) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// stdout returns the kept tail of stdout, as a shell's $(...) would: valid
// UTF-8, without trailing newlines.
func (s *logSink) stdout() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.TrimRight(strings.ToValidUTF8(string(s.tail), "\uFFFD"), "\n")
}
