package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	enginev1 "github.com/palvella/palvella/proto/palvella/engine/v1"
	hostv1 "github.com/palvella/palvella/proto/palvella/host/v1"
	storagev1 "github.com/palvella/palvella/proto/palvella/storage/v1"
	"google.golang.org/grpc"
)

// chunkSize is the size of data chunks in streamed blobs.
const chunkSize = 64 << 10

// hostClient is the plugin side of the host services.
type hostClient struct {
	client hostv1.HostServiceClient
}

var _ Host = (*hostClient)(nil)

func (h *hostClient) Log(ctx context.Context, level LogLevel, msg string, fields map[string]string) error {
	_, err := h.client.Log(OutgoingExecution(ctx), &hostv1.LogRequest{Level: hostv1.Level(level), Message: msg, Fields: fields})
	return FromGRPC(err)
}

func (h *hostClient) ReadCredential(ctx context.Context, name, key string) ([]byte, error) {
	resp, err := h.client.CredentialRead(OutgoingExecution(ctx), &hostv1.CredentialReadRequest{Name: name, Key: key})
	if err != nil {
		return nil, FromGRPC(err)
	}
	return resp.GetValue(), nil
}

func (h *hostClient) PutObject(ctx context.Context, key string, r io.Reader) error {
	stream, err := h.client.StoragePut(OutgoingExecution(ctx))
	if err != nil {
		return FromGRPC(err)
	}
	if err := stream.Send(&storagev1.PutRequest{Msg: &storagev1.PutRequest_Ref{Ref: &storagev1.ObjectRef{Key: key}}}); err != nil {
		return FromGRPC(err)
	}
	if err := SendChunks(r, func(b []byte) error {
		return stream.Send(&storagev1.PutRequest{Msg: &storagev1.PutRequest_Chunk{Chunk: b}})
	}); err != nil {
		return FromGRPC(err)
	}
	_, err = stream.CloseAndRecv()
	return FromGRPC(err)
}

func (h *hostClient) GetObject(ctx context.Context, key string) (io.ReadCloser, error) {
	ctx, cancel := context.WithCancel(OutgoingExecution(ctx))
	stream, err := h.client.StorageGet(ctx, &storagev1.GetRequest{Ref: &storagev1.ObjectRef{Key: key}})
	if err != nil {
		cancel()
		return nil, FromGRPC(err)
	}
	first, err := stream.Recv()
	if err != nil {
		cancel()
		return nil, FromGRPC(err)
	}
	if first.GetInfo() == nil {
		cancel()
		return nil, Errorf(ErrInternal, "", "host answered StorageGet without object info")
	}
	return NewChunkReader(func() ([]byte, error) {
		msg, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		return msg.GetChunk(), nil
	}, cancel), nil
}

func (h *hostClient) Exec(ctx context.Context, req *HostExecRequest, out func(stream string, data []byte)) (*HostExecResult, error) {
	stream, err := h.client.Exec(OutgoingExecution(ctx), &enginev1.ExecRequest{
		Shell: req.Shell, Script: req.Script, Command: req.Command, Env: req.Env, Workdir: req.Workdir, FilesOut: req.FilesOut,
	})
	if err != nil {
		return nil, FromGRPC(err)
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, Errorf(ErrInternal, "", "host ended Exec without a result")
			}
			return nil, FromGRPC(err)
		}
		switch e := ev.GetEvent().(type) {
		case *enginev1.ExecEvent_Output:
			if out != nil {
				out(e.Output.GetStream(), e.Output.GetData())
			}
		case *enginev1.ExecEvent_Result:
			res := &HostExecResult{ExitCode: int(e.Result.GetExitCode()), TimedOut: e.Result.GetTimedOut(), Cancelled: e.Result.GetCancelled()}
			for _, f := range e.Result.GetFilesOut() {
				if res.FilesOut == nil {
					res.FilesOut = map[string][]byte{}
				}
				res.FilesOut[f.GetPath()] = f.GetContent()
			}
			return res, nil
		}
	}
}

// hostServer is the core side of the host services: it relays calls to the
// core's Host implementation.
type hostServer struct {
	hostv1.UnimplementedHostServiceServer
	impl Host
}

func (s *hostServer) Log(ctx context.Context, req *hostv1.LogRequest) (*hostv1.LogResponse, error) {
	if err := s.impl.Log(IncomingExecution(ctx), LogLevel(req.GetLevel()), req.GetMessage(), req.GetFields()); err != nil {
		return nil, ToGRPC(err)
	}
	return &hostv1.LogResponse{}, nil
}

func (s *hostServer) CredentialRead(ctx context.Context, req *hostv1.CredentialReadRequest) (*hostv1.CredentialReadResponse, error) {
	v, err := s.impl.ReadCredential(IncomingExecution(ctx), req.GetName(), req.GetKey())
	if err != nil {
		return nil, ToGRPC(err)
	}
	return &hostv1.CredentialReadResponse{Value: v}, nil
}

func (s *hostServer) StoragePut(stream grpc.ClientStreamingServer[storagev1.PutRequest, storagev1.PutResponse]) error {
	first, err := stream.Recv()
	if err != nil {
		return ToGRPC(fmt.Errorf("storage put: %w", err))
	}
	ref := first.GetRef()
	if ref == nil {
		return ToGRPC(Errorf(ErrInvalidArgument, "ref", "the first message of StoragePut must carry the object's ref"))
	}
	r := NewChunkReader(func() ([]byte, error) {
		msg, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		return msg.GetChunk(), nil
	}, nil)
	if err := s.impl.PutObject(IncomingExecution(stream.Context()), ref.GetKey(), r); err != nil {
		return ToGRPC(err)
	}
	return stream.SendAndClose(&storagev1.PutResponse{Info: &storagev1.ObjectInfo{Ref: ref}})
}

func (s *hostServer) StorageGet(req *storagev1.GetRequest, stream grpc.ServerStreamingServer[storagev1.GetResponse]) error {
	ctx := IncomingExecution(stream.Context())
	rc, err := s.impl.GetObject(ctx, req.GetRef().GetKey())
	if err != nil {
		return ToGRPC(err)
	}
	defer rc.Close()
	if err := stream.Send(&storagev1.GetResponse{Msg: &storagev1.GetResponse_Info{Info: &storagev1.ObjectInfo{Ref: req.GetRef()}}}); err != nil {
		return err
	}
	return ToGRPC(SendChunks(rc, func(b []byte) error {
		return stream.Send(&storagev1.GetResponse{Msg: &storagev1.GetResponse_Chunk{Chunk: b}})
	}))
}

func (s *hostServer) Exec(req *enginev1.ExecRequest, stream grpc.ServerStreamingServer[enginev1.ExecEvent]) error {
	ctx := IncomingExecution(stream.Context())
	var sendErr error
	res, err := s.impl.Exec(ctx, &HostExecRequest{Shell: req.GetShell(), Script: req.GetScript(), Command: req.GetCommand(), Env: req.GetEnv(), Workdir: req.GetWorkdir(), FilesOut: req.GetFilesOut()},
		func(name string, data []byte) {
			if sendErr == nil {
				sendErr = stream.Send(&enginev1.ExecEvent{Event: &enginev1.ExecEvent_Output{Output: &enginev1.OutputChunk{Stream: name, Data: data}}})
			}
		})
	if err != nil {
		return ToGRPC(err)
	}
	if sendErr != nil {
		return sendErr
	}
	result := &enginev1.ExecResult{ExitCode: int32(res.ExitCode), TimedOut: res.TimedOut, Cancelled: res.Cancelled}
	for _, path := range slices.Sorted(maps.Keys(res.FilesOut)) {
		result.FilesOut = append(result.FilesOut, &enginev1.File{Path: path, Content: res.FilesOut[path]})
	}
	return stream.Send(&enginev1.ExecEvent{Event: &enginev1.ExecEvent_Result{Result: result}})
}
