package engine

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

func TestValidate(t *testing.T) {
	ok := ExecRequest{WorkspaceID: "ws", Script: "true"}
	for _, tc := range []struct {
		name  string
		edit  func(r *ExecRequest)
		field string // "" means valid
	}{
		{"script", func(r *ExecRequest) {}, ""},
		{"command", func(r *ExecRequest) { r.Script, r.Command = "", []string{"make"} }, ""},
		{"everything", func(r *ExecRequest) {
			r.Env = map[string]string{"A": ""}
			r.Workdir = "a/b/.."
			r.FilesIn = []File{{Path: "x/y", Mode: 0o700}}
			r.FilesOut = []string{"x/y"}
			r.Timeout = time.Minute
		}, ""},
		{"no workspace", func(r *ExecRequest) { r.WorkspaceID = "" }, "workspace_id"},
		{"nothing to run", func(r *ExecRequest) { r.Script = "" }, "script"},
		{"both", func(r *ExecRequest) { r.Command = []string{"make"} }, "command"},
		{"empty program", func(r *ExecRequest) { r.Script, r.Command = "", []string{""} }, "command"},
		{"shell with command", func(r *ExecRequest) { r.Script, r.Command, r.Shell = "", []string{"make"}, []string{"sh"} }, "shell"},
		{"empty shell program", func(r *ExecRequest) { r.Shell = []string{"", "-c"} }, "shell"},
		{"NUL in script", func(r *ExecRequest) { r.Script = "a\x00b" }, "script"},
		{"env name with =", func(r *ExecRequest) { r.Env = map[string]string{"A=B": ""} }, "env"},
		{"env value with NUL", func(r *ExecRequest) { r.Env = map[string]string{"A": "x\x00"} }, "env"},
		{"workdir escapes", func(r *ExecRequest) { r.Workdir = "a/../../b" }, "workdir"},
		{"workdir absolute", func(r *ExecRequest) { r.Workdir = "/tmp" }, "workdir"},
		{"file in escapes", func(r *ExecRequest) { r.FilesIn = []File{{Path: "ok"}, {Path: ".."}} }, "files_in[1].path"},
		{"file in is the workspace", func(r *ExecRequest) { r.FilesIn = []File{{Path: "."}} }, "files_in[0].path"},
		{"file in mode not permissions", func(r *ExecRequest) { r.FilesIn = []File{{Path: "a", Mode: 0o4755}} }, "files_in[0].mode"},
		{"file out absolute", func(r *ExecRequest) { r.FilesOut = []string{"/etc/passwd"} }, "files_out[0]"},
		{"negative timeout", func(r *ExecRequest) { r.Timeout = -1 }, "timeout"},
	} {
		r := ok
		tc.edit(&r)
		err := r.Validate()
		if tc.field == "" {
			if err != nil {
				t.Errorf("%s: Validate = %v, want nil", tc.name, err)
			}
			continue
		}
		var typed *sdk.Error
		if !errors.Is(err, sdk.ErrInvalidArgument) || !errors.As(err, &typed) || typed.Field != tc.field {
			t.Errorf("%s: Validate = %v, want an invalid argument about %s", tc.name, err, tc.field)
		}
	}
}

func TestValidateDoesNotPrintEnvValues(t *testing.T) {
	r := ExecRequest{WorkspaceID: "ws", Script: "true", Env: map[string]string{"TOKEN": "s3cret\x00"}}
	if err := r.Validate(); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Validate = %v, want an error that does not contain the value", err)
	}
}

// FuzzCleanPath checks that a path CleanPath accepts stays inside the
// workspace once joined to it.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../a", "a/../..", "/abs", ".", "a//b/./c", "a/..", "..a", "a\x00b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		clean, err := CleanPath("path", p, true)
		if err != nil {
			if !errors.Is(err, sdk.ErrInvalidArgument) {
				t.Fatalf("CleanPath(%q) error %v is not an invalid argument", p, err)
			}
			return
		}
		const ws = "/work/ws"
		joined := filepath.Join(ws, filepath.FromSlash(clean))
		if joined != ws && !strings.HasPrefix(joined, ws+"/") {
			t.Fatalf("CleanPath(%q) = %q, which leads to %s outside the workspace", p, clean, joined)
		}
		if strings.ContainsRune(clean, 0) {
			t.Fatalf("CleanPath(%q) kept a NUL byte", p)
		}
	})
}
