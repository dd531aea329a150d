package engine

import (
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

// HostIdle and HostTimeout: an engine pings its host (the server or
// worker that launched it) after HostIdle without traffic, and drops the
// connection, cancelling every call in flight, when the host does not
// answer within HostTimeout. A frozen host (SIGSTOP, a paused machine)
// cannot renew its jobs' leases; with the default 10 s lease, renewed
// every 2.5 s, its jobs' commands must stop before 7.5 s have passed,
// or another worker may run the jobs while they still run here. The
// keepalive gives an engine about 4 s to notice, leaving it the rest to
// stop what the cancelled calls started (docs/design/remote-workers.md).
const (
	HostIdle    = 2 * time.Second
	HostTimeout = 2 * time.Second
)

// HostKeepalive is the ServeOption every engine serves with: a host that
// stops answering has its engine's calls cancelled after HostIdle plus
// HostTimeout, and an engine stops the commands of a cancelled Exec
// (Engine.Exec).
//
//	sdk.ServeWith(p, []sdk.Service{engine.Service(p)}, engine.HostKeepalive())
func HostKeepalive() sdk.ServeOption { return sdk.WithHostKeepalive(HostIdle, HostTimeout) }
