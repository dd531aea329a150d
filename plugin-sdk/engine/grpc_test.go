package engine_test

import (
	"context"
	"errors"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
)

// fakeEngine is an engine made of function fields.
type fakeEngine struct {
	exec func(ctx context.Context, req *engine.ExecRequest, out func(string, []byte) error) (*engine.ExecResult, error)
}

func (f *fakeEngine) Describe(context.Context) (*sdk.Manifest, error) {
	return &sdk.Manifest{Name: "fake", Version: "0"}, nil
}

func (f *fakeEngine) Configure(context.Context, *sdk.ConfigureRequest) (*sdk.ConfigureResponse, error) {
	return &sdk.ConfigureResponse{}, nil
}

func (f *fakeEngine) Setup(context.Context, *engine.SetupRequest) (*engine.Workspace, error) {
	return &engine.Workspace{ID: "ws", Workdir: "/ws"}, nil
}

func (f *fakeEngine) Exec(ctx context.Context, req *engine.ExecRequest, out func(string, []byte) error) (*engine.ExecResult, error) {
	return f.exec(ctx, req, out)
}

func (f *fakeEngine) Cancel(context.Context, string, string) error { return nil }

func (f *fakeEngine) Teardown(context.Context, string) error { return nil }

func TestCancellingTheCallerReachesThePlugin(t *testing.T) {
	running := make(chan struct{})
	pluginSaw := make(chan error, 1)
	fake := &fakeEngine{exec: func(ctx context.Context, _ *engine.ExecRequest, out func(string, []byte) error) (*engine.ExecResult, error) {
		if err := out(engine.Stdout, []byte("started\n")); err != nil {
			return nil, err
		}
		close(running)
		<-ctx.Done()
		pluginSaw <- ctx.Err()
		return nil, ctx.Err()
	}}
	client := sdktest.OverGRPC[engine.Engine](t, fake, engine.Service)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := client.Exec(ctx, &engine.ExecRequest{WorkspaceID: "ws", Script: "x"}, func(string, []byte) error { return nil })
		errc <- err
	}()
	<-running
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("client error = %v, want context.Canceled", err)
	}
	if err := <-pluginSaw; !errors.Is(err, context.Canceled) {
		t.Fatalf("plugin's context ended with %v, want context.Canceled", err)
	}
}

func TestPluginErrorsKeepTheirKindAndField(t *testing.T) {
	fake := &fakeEngine{exec: func(context.Context, *engine.ExecRequest, func(string, []byte) error) (*engine.ExecResult, error) {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "files_in[2].path", "escapes the workspace")
	}}
	client := sdktest.OverGRPC[engine.Engine](t, fake, engine.Service)
	_, err := client.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: "ws", Script: "x"}, nil)
	var typed *sdk.Error
	if !errors.Is(err, sdk.ErrInvalidArgument) || !errors.As(err, &typed) || typed.Field != "files_in[2].path" {
		t.Fatalf("error = %v, want an invalid argument about files_in[2].path", err)
	}
}

func TestAnEngineThatReturnsNothingIsAnInternalError(t *testing.T) {
	fake := &fakeEngine{exec: func(context.Context, *engine.ExecRequest, func(string, []byte) error) (*engine.ExecResult, error) {
		return nil, nil
	}}
	client := sdktest.OverGRPC[engine.Engine](t, fake, engine.Service)
	if _, err := client.Exec(context.Background(), &engine.ExecRequest{WorkspaceID: "ws", Script: "x"}, nil); !errors.Is(err, sdk.ErrInternal) {
		t.Fatalf("error = %v, want sdk.ErrInternal", err)
	}
}
