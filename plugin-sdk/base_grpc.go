package sdk

import (
	"context"
	"fmt"
	"sync"

	goplugin "github.com/hashicorp/go-plugin"
	hostv1 "github.com/palvella/palvella/proto/palvella/host/v1"
	pluginv1 "github.com/palvella/palvella/proto/palvella/plugin/v1"
	"google.golang.org/grpc"
)

// BasePlugin is the go-plugin plugin for the base service every plugin
// serves. Impl is set on the plugin side and nil on the host side.
type BasePlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	Impl Plugin
	// normalize fills in what Serve knows about the manifest.
	normalize func(*Manifest)
}

var _ goplugin.GRPCPlugin = (*BasePlugin)(nil)

// GRPCServer registers the base service.
func (p *BasePlugin) GRPCServer(broker *goplugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterPluginServiceServer(s, &baseServer{impl: p.Impl, broker: broker, normalize: p.normalize})
	return nil
}

// GRPCClient returns a *BaseClient.
func (p *BasePlugin) GRPCClient(_ context.Context, broker *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewBaseClient(broker, c), nil
}

type baseServer struct {
	pluginv1.UnimplementedPluginServiceServer
	impl      Plugin
	broker    *goplugin.GRPCBroker
	normalize func(*Manifest)

	mu       sync.Mutex
	hostID   uint32
	hostConn *grpc.ClientConn
}

func (s *baseServer) Describe(ctx context.Context, _ *pluginv1.DescribeRequest) (*pluginv1.DescribeResponse, error) {
	m, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, ToGRPC(fmt.Errorf("describe: %w", err))
	}
	if s.normalize != nil {
		s.normalize(m)
	}
	pm, err := ManifestToProto(m)
	if err != nil {
		return nil, ToGRPC(fmt.Errorf("describe: %w", err))
	}
	return &pluginv1.DescribeResponse{Manifest: pm}, nil
}

func (s *baseServer) Configure(ctx context.Context, req *pluginv1.ConfigureRequest) (*pluginv1.ConfigureResponse, error) {
	var host Host
	if id := req.GetHostBrokerId(); id != 0 && s.broker != nil {
		conn, err := s.dialHost(id)
		if err != nil {
			return nil, ToGRPC(fmt.Errorf("connect to host services: %w", err))
		}
		host = &hostClient{client: hostv1.NewHostServiceClient(conn)}
	}
	resp, err := s.impl.Configure(ctx, &ConfigureRequest{Config: StructFromProto(req.GetConfig()), Host: host})
	if err != nil {
		return nil, ToGRPC(err)
	}
	if resp == nil {
		return &pluginv1.ConfigureResponse{}, nil
	}
	return &pluginv1.ConfigureResponse{Diagnostics: DiagnosticsToProto(resp.Diagnostics)}, nil
}

// dialHost connects to the host services once per broker ID.
func (s *baseServer) dialHost(id uint32) (*grpc.ClientConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hostConn != nil && s.hostID == id {
		return s.hostConn, nil
	}
	conn, err := s.broker.Dial(id)
	if err != nil {
		return nil, err
	}
	if s.hostConn != nil {
		_ = s.hostConn.Close() // replaced by the new connection
	}
	s.hostID, s.hostConn = id, conn
	return conn, nil
}

// BaseClient calls the base service of a plugin. Category clients embed it,
// so every dispensed client also answers Describe and Configure.
type BaseClient struct {
	client pluginv1.PluginServiceClient
	broker *goplugin.GRPCBroker

	mu     sync.Mutex
	host   Host
	hostID uint32
}

var _ Plugin = (*BaseClient)(nil)

// NewBaseClient returns a client of the base service over conn. broker may
// be nil, in which case Configure cannot offer host services.
func NewBaseClient(broker *goplugin.GRPCBroker, conn *grpc.ClientConn) *BaseClient {
	return &BaseClient{client: pluginv1.NewPluginServiceClient(conn), broker: broker}
}

// Describe asks the plugin for its manifest.
func (c *BaseClient) Describe(ctx context.Context) (*Manifest, error) {
	resp, err := c.client.Describe(ctx, &pluginv1.DescribeRequest{})
	if err != nil {
		return nil, FromGRPC(err)
	}
	if resp.GetManifest() == nil {
		return nil, Errorf(ErrInternal, "manifest", "plugin answered Describe without a manifest")
	}
	return ManifestFromProto(resp.GetManifest()), nil
}

// Configure sends the configuration, and serves req.Host to the plugin
// through the broker.
func (c *BaseClient) Configure(ctx context.Context, req *ConfigureRequest) (*ConfigureResponse, error) {
	cfg, err := StructToProto(req.Config, "config")
	if err != nil {
		return nil, err
	}
	preq := &pluginv1.ConfigureRequest{Config: cfg}
	if req.Host != nil && c.broker != nil {
		preq.HostBrokerId = c.serveHost(req.Host)
	}
	resp, err := c.client.Configure(ctx, preq)
	if err != nil {
		return nil, FromGRPC(err)
	}
	return &ConfigureResponse{Diagnostics: DiagnosticsFromProto(resp.GetDiagnostics())}, nil
}

// serveHost starts serving the host services once per host value.
func (c *BaseClient) serveHost(h Host) uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.host == h && c.hostID != 0 {
		return c.hostID
	}
	id := c.broker.NextId()
	go c.broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(opts...)
		hostv1.RegisterHostServiceServer(s, &hostServer{impl: h})
		return s
	})
	c.host, c.hostID = h, id
	return id
}
