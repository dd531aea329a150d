package engine

import (
	"io/fs"

	sdk "github.com/palvella/palvella/plugin-sdk"
	enginev1 "github.com/palvella/palvella/proto/palvella/engine/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

func setupToProto(r *SetupRequest) (*enginev1.SetupRequest, error) {
	opts, err := sdk.StructToProto(r.Options, "options")
	if err != nil {
		return nil, err
	}
	return &enginev1.SetupRequest{Options: opts, Namespace: r.Namespace, Pipeline: r.Pipeline, Run: r.Run, Job: r.Job}, nil
}

func setupFromProto(r *enginev1.SetupRequest) *SetupRequest {
	return &SetupRequest{
		Options: sdk.StructFromProto(r.GetOptions()), Namespace: r.GetNamespace(),
		Pipeline: r.GetPipeline(), Run: r.GetRun(), Job: r.GetJob(),
	}
}

func filesToProto(fs []File) []*enginev1.File {
	var out []*enginev1.File
	for _, f := range fs {
		out = append(out, &enginev1.File{Path: f.Path, Content: f.Content, Mode: uint32(f.Mode)})
	}
	return out
}

func filesFromProto(pfs []*enginev1.File) []File {
	var out []File
	for _, f := range pfs {
		out = append(out, File{Path: f.GetPath(), Content: f.GetContent(), Mode: fs.FileMode(f.GetMode())})
	}
	return out
}

func execToProto(r *ExecRequest) *enginev1.ExecRequest {
	out := &enginev1.ExecRequest{
		WorkspaceId: r.WorkspaceID, ExecId: r.ExecID, Shell: r.Shell, Script: r.Script,
		Command: r.Command, Env: r.Env, Workdir: r.Workdir, Image: r.Image,
		FilesIn: filesToProto(r.FilesIn), FilesOut: r.FilesOut,
	}
	if r.Timeout != 0 {
		out.Timeout = durationpb.New(r.Timeout)
	}
	return out
}

func execFromProto(r *enginev1.ExecRequest) *ExecRequest {
	out := &ExecRequest{
		WorkspaceID: r.GetWorkspaceId(), ExecID: r.GetExecId(), Shell: r.GetShell(), Script: r.GetScript(),
		Command: r.GetCommand(), Env: r.GetEnv(), Workdir: r.GetWorkdir(), Image: r.GetImage(),
		FilesIn: filesFromProto(r.GetFilesIn()), FilesOut: r.GetFilesOut(),
	}
	if r.GetTimeout() != nil {
		// AsDuration saturates out-of-range values; a negative one is
		// rejected by Validate.
		out.Timeout = r.GetTimeout().AsDuration()
	}
	return out
}

func resultToProto(r *ExecResult) *enginev1.ExecResult {
	return &enginev1.ExecResult{
		ExitCode: int32(r.ExitCode), TimedOut: r.TimedOut, Cancelled: r.Cancelled,
		FilesOut: filesToProto(r.FilesOut),
	}
}

func resultFromProto(r *enginev1.ExecResult) *ExecResult {
	return &ExecResult{
		ExitCode: int(r.GetExitCode()), TimedOut: r.GetTimedOut(), Cancelled: r.GetCancelled(),
		FilesOut: filesFromProto(r.GetFilesOut()),
	}
}
