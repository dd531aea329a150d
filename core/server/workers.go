package server

// The worker protocol on the API's listener: remote workers (`palvella
// worker --server URL`) speak gRPC to the URL the CLI uses. A request
// whose content type is application/grpc goes to the worker service,
// anything else to the API; HTTP/2 comes with TLS (ALPN) or, on plain
// HTTP, as h2c with prior knowledge, which is how gRPC speaks without
// TLS.

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/metrics"
	"github.com/palvella/palvella/core/orchestrator"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"github.com/palvella/palvella/plugin-sdk/authorization"
	workerv1 "github.com/palvella/palvella/proto/palvella/worker/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// maxWorkerMessage bounds one message of the worker protocol: a log
// chunk is at most 1 MiB and a stored file 3 MiB.
const maxWorkerMessage = 8 << 20

// workerServer is the gRPC server of the worker service.
func workerServer(orch *orchestrator.Orchestrator, authn *authn, authz api.Authorizer) *grpc.Server {
	g := grpc.NewServer(grpc.MaxRecvMsgSize(maxWorkerMessage), grpc.MaxSendMsgSize(maxWorkerMessage))
	wa := &workerAuth{authn: authn, authz: authz}
	workerv1.RegisterWorkerServiceServer(g, orch.WorkerService(wa.authorize))
	return g
}

// workerMetrics feeds the workers' gauges of /metrics: what the workers'
// documents say (their last heartbeats) and the leases this server holds
// for them.
func workerMetrics(orch *orchestrator.Orchestrator, m *metrics.Metrics) {
	m.RegisterWorkers(func() []metrics.WorkerState {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ws, err := orch.Workers(ctx)
		if err != nil {
			return nil
		}
		leases := orch.RemoteLeases()
		now := time.Now()
		out := make([]metrics.WorkerState, 0, len(ws))
		for _, w := range ws {
			st := metrics.WorkerState{Name: w.Name, Jobs: len(w.Status.Jobs), Capacity: w.Status.Capacity, Drained: w.Spec.Drain,
				HeartbeatAge: now.Sub(w.Status.LastHeartbeat).Seconds(), LeaseAge: -1}
			if l := leases[w.Name]; len(l) > 0 {
				st.LeaseAge = l[len(l)-1].Seconds()
			}
			out = append(out, st)
		}
		return out
	})
}

// withWorkers sends gRPC requests to g and the rest to h.
func withWorkers(g *grpc.Server, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			g.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// serveHTTP2 lets the API's server speak HTTP/2 without TLS too (h2c with
// prior knowledge), for workers on plain HTTP.
func serveHTTP2(srv *http.Server) {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	srv.Protocols = p
}

// workerAuth authenticates the token of a worker's call and asks the
// authorization plugin whether it may lease as the worker (method lease
// on worker:<name>, which the built-in role worker has).
type workerAuth struct {
	authn *authn
	authz api.Authorizer
}

func (a *workerAuth) authorize(ctx context.Context, worker string) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	var token string
	for _, v := range md.Get("authorization") {
		if t, ok := strings.CutPrefix(v, "Bearer "); ok {
			token = strings.TrimSpace(t)
		}
	}
	if token == "" {
		return "", sdk.Errorf(sdk.ErrUnauthenticated, "", "no token: a worker authenticates with a token of the role worker (palvella token create NAME --role worker)")
	}
	id, err := a.authn.Authenticate(ctx, token)
	if err != nil {
		return "", err
	}
	if id.Status != authentication.StatusAuthenticated {
		return "", sdk.Errorf(sdk.ErrUnauthenticated, "", "the worker's token is %s", id.Status)
	}
	d, err := a.authz.Authorize(ctx, id, "worker:"+worker, authorization.MethodLease)
	if err != nil {
		return "", err
	}
	if !d.Allowed {
		return "", sdk.Errorf(sdk.ErrPermissionDenied, "", "%s may not lease jobs as worker %s (it needs the role worker): %s", id.Name, worker, d.Reason)
	}
	return id.Name, nil
}
