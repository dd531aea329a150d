package kubernetes

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"path"
	"strings"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
)

// A command's files out come back in its container's termination message,
// which the kubelet reads from /dev/termination-log when the container
// ends and keeps in the pod's status: the engine needs no pods/exec right
// and no volume it can read. The message holds at most 4096 bytes, which
// the outputs files of actions fit; a command whose files do not fit fails
// saying so.
const (
	terminationLog      = "/dev/termination-log"
	maxTerminationBytes = 4096
	filesOutEnv         = "PALVELLA_FILES_OUT"
	filesOutBegin       = "palvella-files-out-begin"
	filesOutEnd         = "palvella-files-out-end"
)

// filesOutScript runs the command ("$@"), then writes each file of
// $PALVELLA_FILES_OUT (one path a line, relative to the workspace root
// $1) that is a regular file to $2 as its path on a line and its base64
// on the next, between a begin and an end line, and exits with the
// command's status.
// It needs sh and base64 in the image (busybox, Alpine, Debian and most
// images have both).
const filesOutScript = `root=$1 out=$2; shift 2
"$@"; code=$?
{
  printf '%s\n' ` + filesOutBegin + `
  printf '%s\n' "$` + filesOutEnv + `" | while IFS= read -r f; do
    if [ -n "$f" ] && [ -f "$root/$f" ]; then
      printf '%s\n' "$f"
      base64 < "$root/$f" | tr -d '\n'
      printf '\n'
    fi
  done
  printf '%s\n' ` + filesOutEnd + `
} > "$out" 2>/dev/null
exit $code`

// withFilesOut wraps argv so that the files come back in the termination
// message; it returns the wrapped argv and the environment it needs.
func withFilesOut(argv []string, root string, files []string) ([]string, map[string]string, error) {
	for i, f := range files {
		if strings.ContainsAny(f, "\n\x00") {
			return nil, nil, sdk.Errorf(sdk.ErrInvalidArgument, fmt.Sprintf("files_out[%d]", i), "a path of a file out must be one line")
		}
	}
	wrapped := append([]string{"sh", "-c", filesOutScript, "palvella-files-out", root, terminationLog}, argv...)
	return wrapped, map[string]string{filesOutEnv: strings.Join(files, "\n")}, nil
}

// filesFromMessage reads the files a command's termination message
// carries. A message that does not begin as the wrapper writes it is no
// file (a container that never ran the wrapper, such as kwok's, whose
// stages write messages of their own, or one that was killed); a message
// without its end line was cut at the kubelet's 4096 bytes.
func filesFromMessage(msg string) ([]engine.File, error) {
	rest, ok := strings.CutPrefix(msg, filesOutBegin+"\n")
	if !ok {
		return nil, nil
	}
	msg = rest
	if msg != filesOutEnd+"\n" && !strings.HasSuffix(msg, "\n"+filesOutEnd+"\n") {
		return nil, sdk.Errorf(sdk.ErrResourceExhausted, "files_out", "the command's files out are larger than the %d bytes of a pod's termination message, which brings them back on this engine", maxTerminationBytes)
	}
	var files []engine.File
	sc := bufio.NewScanner(strings.NewReader(msg))
	sc.Buffer(make([]byte, 0, maxTerminationBytes), maxTerminationBytes+1)
	for sc.Scan() {
		name := sc.Text()
		if name == filesOutEnd {
			return files, nil
		}
		if !sc.Scan() {
			break
		}
		data, err := base64.StdEncoding.DecodeString(sc.Text())
		if err != nil {
			return nil, sdk.Errorf(sdk.ErrInternal, "files_out", "the file %q in the command's termination message is not base64: %v", name, err)
		}
		files = append(files, engine.File{Path: path.Clean(name), Content: data})
	}
	return nil, sdk.Errorf(sdk.ErrResourceExhausted, "files_out", "the command's files out are larger than the %d bytes of a pod's termination message, which brings them back on this engine", maxTerminationBytes)
}
