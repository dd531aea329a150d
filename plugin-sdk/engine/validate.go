package engine

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

// Validate checks what every engine requires of a request, and returns an
// sdk.ErrInvalidArgument naming the first bad field: "workspace_id",
// "script" (neither script nor command), "command" (both, or an empty
// argv[0]), "shell", "env", "workdir", "files_in[i].path",
// "files_in[i].mode", "files_out[i]" or "timeout". Engines call it first
// thing in Exec; it does not check that the workspace exists.
func (r *ExecRequest) Validate() error {
	if r.WorkspaceID == "" {
		return sdk.Errorf(sdk.ErrInvalidArgument, "workspace_id", "is required")
	}
	switch {
	case r.Script == "" && len(r.Command) == 0:
		return sdk.Errorf(sdk.ErrInvalidArgument, "script", "a script or a command is required")
	case r.Script != "" && len(r.Command) > 0:
		return sdk.Errorf(sdk.ErrInvalidArgument, "command", "is exclusive with script")
	case len(r.Command) > 0 && r.Command[0] == "":
		return sdk.Errorf(sdk.ErrInvalidArgument, "command", "the program (first element) is empty")
	case len(r.Command) > 0 && len(r.Shell) > 0:
		return sdk.Errorf(sdk.ErrInvalidArgument, "shell", "applies to a script, not to a command")
	case len(r.Shell) > 0 && r.Shell[0] == "":
		return sdk.Errorf(sdk.ErrInvalidArgument, "shell", "the program (first element) is empty")
	}
	for i, a := range r.Command {
		if strings.ContainsRune(a, 0) {
			return sdk.Errorf(sdk.ErrInvalidArgument, "command", "element %d contains a NUL byte", i)
		}
	}
	for i, a := range r.Shell {
		if strings.ContainsRune(a, 0) {
			return sdk.Errorf(sdk.ErrInvalidArgument, "shell", "element %d contains a NUL byte", i)
		}
	}
	if strings.ContainsRune(r.Script, 0) {
		return sdk.Errorf(sdk.ErrInvalidArgument, "script", "contains a NUL byte")
	}
	for k, v := range r.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return sdk.Errorf(sdk.ErrInvalidArgument, "env", "variable name %q is empty or contains '=' or NUL", k)
		}
		if strings.ContainsRune(v, 0) {
			// The value may be a secret: name the variable, never the value.
			return sdk.Errorf(sdk.ErrInvalidArgument, "env", "value of %s contains a NUL byte", k)
		}
	}
	if r.Workdir != "" {
		if _, err := CleanPath("workdir", r.Workdir, true); err != nil {
			return err
		}
	}
	for i, f := range r.FilesIn {
		field := fmt.Sprintf("files_in[%d].path", i)
		if _, err := CleanPath(field, f.Path, false); err != nil {
			return err
		}
		if f.Mode&^0o777 != 0 {
			return sdk.Errorf(sdk.ErrInvalidArgument, fmt.Sprintf("files_in[%d].mode", i), "%#o has bits other than permissions", uint32(f.Mode))
		}
	}
	for i, p := range r.FilesOut {
		if _, err := CleanPath(fmt.Sprintf("files_out[%d]", i), p, false); err != nil {
			return err
		}
	}
	if r.Timeout < 0 {
		return sdk.Errorf(sdk.ErrInvalidArgument, "timeout", "is negative (%s)", r.Timeout)
	}
	return nil
}

// CleanPath checks that p is a slash-separated path relative to the
// workspace that stays inside it, and returns it cleaned. The workspace
// itself (".") is accepted only when dirOK is set. Errors are
// sdk.ErrInvalidArgument about field.
func CleanPath(field, p string, dirOK bool) (string, error) {
	if p == "" {
		return "", sdk.Errorf(sdk.ErrInvalidArgument, field, "is empty")
	}
	if strings.ContainsRune(p, 0) {
		return "", sdk.Errorf(sdk.ErrInvalidArgument, field, "contains a NUL byte")
	}
	if strings.HasPrefix(p, "/") || !filepath.IsLocal(filepath.FromSlash(p)) {
		return "", sdk.Errorf(sdk.ErrInvalidArgument, field, "%q is not a relative path inside the workspace", p)
	}
	clean := path.Clean(p)
	if clean == "." && !dirOK {
		return "", sdk.Errorf(sdk.ErrInvalidArgument, field, "%q names the workspace, not a file in it", p)
	}
	return clean, nil
}
