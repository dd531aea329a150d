package orchestrator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugin-sdk/storage"
)

// maxStorageFile bounds one file moved between storage and a workspace: files
// travel inside one engine call.
const maxStorageFile = 3 << 20

func scopeFor(run *resource.Run, e storageEntry) storage.Scope {
	s := storage.Scope{Kind: storage.ScopeRun, Namespace: run.Namespace, Pipeline: run.Pipeline, Run: run.Name}
	if e.Scope == "pipeline" {
		s = storage.Scope{Kind: storage.ScopePipeline, Namespace: run.Namespace, Pipeline: run.Pipeline}
	}
	return s
}

func keyFor(e storageEntry) string {
	if e.Key != "" {
		return e.Key
	}
	return e.Path
}

// storageGet copies stored objects into the workspace. A key never stored
// leaves its path absent.
func (o *Orchestrator) storageGet(ctx context.Context, run *resource.Run, eng engine.Engine, ws *engine.Workspace, entries []storageEntry) error {
	if len(entries) == 0 {
		return nil
	}
	st, err := o.storage(ctx)
	if err != nil {
		return err
	}
	var files []engine.File
	for _, e := range entries {
		rc, info, err := st.Get(ctx, storage.ObjectRef{Scope: scopeFor(run, e), Key: keyFor(e)})
		if errors.Is(err, sdk.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("storage get %s: %w", e.Path, err)
		}
		if info != nil && info.Size > maxStorageFile {
			rc.Close()
			return fmt.Errorf("storage get %s: %d bytes is more than the %d bytes a stored file may have", e.Path, info.Size, maxStorageFile)
		}
		b, err := io.ReadAll(io.LimitReader(rc, maxStorageFile+1))
		rc.Close()
		if err != nil {
			return fmt.Errorf("storage get %s: %w", e.Path, err)
		}
		files = append(files, engine.File{Path: e.Path, Content: b, Mode: 0o644})
	}
	if len(files) == 0 {
		return nil
	}
	res, err := eng.Exec(ctx, &engine.ExecRequest{WorkspaceID: ws.ID, Command: []string{"true"}, FilesIn: files}, func(string, []byte) error { return nil })
	if err != nil {
		return fmt.Errorf("storage get: copy files into the workspace: %w", err)
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("storage get: copy files into the workspace: exit code %d", res.ExitCode)
	}
	return nil
}

// storagePut stores workspace files after a job's actions.
func (o *Orchestrator) storagePut(ctx context.Context, run *resource.Run, eng engine.Engine, ws *engine.Workspace, entries []storageEntry) error {
	if len(entries) == 0 {
		return nil
	}
	paths := make([]string, len(entries))
	for i, e := range entries {
		paths[i] = e.Path
	}
	res, err := eng.Exec(ctx, &engine.ExecRequest{WorkspaceID: ws.ID, Command: []string{"true"}, FilesOut: paths}, func(string, []byte) error { return nil })
	if err != nil {
		return fmt.Errorf("storage put: read files from the workspace: %w", err)
	}
	got := map[string][]byte{}
	for _, f := range res.FilesOut {
		got[f.Path] = f.Content
	}
	st, err := o.storage(ctx)
	if err != nil {
		return err
	}
	for _, e := range entries {
		b, ok := got[e.Path]
		if !ok {
			return fmt.Errorf("storage put %s: no such file in the workspace after the job's actions", e.Path)
		}
		if _, err := st.Put(ctx, storage.ObjectRef{Scope: scopeFor(run, e), Key: keyFor(e)}, bytes.NewReader(b)); err != nil {
			return fmt.Errorf("storage put %s: %w", e.Path, err)
		}
	}
	return nil
}
