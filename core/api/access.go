package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/palvella/palvella/core/api/wire"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authorization"
)

// The shapes of POST /api/v1/whoami/access.
type (
	AccessRequest  = wire.AccessRequest
	AccessCheck    = wire.AccessCheck
	AccessResult   = wire.AccessResult
	AccessResponse = wire.AccessResponse
)

// MaxAccessChecks bounds the checks of one access request.
const MaxAccessChecks = 100

// serverKinds are the resource kinds of ScopeServer routes: an identity
// limited to namespaces is refused them whatever the authorizer says.
var serverKinds = []string{"plugin", "metrics"}

// access answers, for the caller only, whether it has each permission it
// asks about, with the same decision the routes make: the namespace scope
// first, then the authorizer. It tells the caller nothing about anybody
// else, as Kubernetes' SelfSubjectAccessReview.
func (s *server) access(c *call) error {
	var req AccessRequest
	if err := c.decode(&req, "checks"); err != nil {
		return err
	}
	if len(req.Checks) > MaxAccessChecks {
		return sdk.Errorf(sdk.ErrInvalidArgument, "checks", "at most %d checks, not %d", MaxAccessChecks, len(req.Checks))
	}
	methods := authorization.Methods()
	out := AccessResponse{Results: make([]AccessResult, 0, len(req.Checks))}
	for i, ch := range req.Checks {
		if !slices.Contains(methods, ch.Permission) {
			return sdk.Errorf(sdk.ErrInvalidArgument, fmt.Sprintf("checks[%d].permission", i), "%q is not one of %s", ch.Permission, strings.Join(methods, ", "))
		}
		kind, _, ok := strings.Cut(ch.Resource, ":")
		if !ok || kind == "" || len(ch.Resource) > 1024 {
			return sdk.Errorf(sdk.ErrInvalidArgument, fmt.Sprintf("checks[%d].resource", i), "%q is not a resource (kind:name)", ch.Resource)
		}
		res := AccessResult{Resource: ch.Resource, Permission: ch.Permission}
		switch {
		case Limited(c.id) && slices.Contains(serverKinds, kind):
			res.Reason = RuleNamespaceScope
		case Limited(c.id) && ResourceNamespace(ch.Resource) != "" && !InScope(c.id, ResourceNamespace(ch.Resource)):
			res.Reason = RuleNamespaceScope
		default:
			d, err := s.authz.Authorize(c.r.Context(), c.id, ch.Resource, ch.Permission)
			if err != nil {
				return fmt.Errorf("authorize %s on %s: %w", ch.Permission, ch.Resource, err)
			}
			if d != nil {
				res.Allowed, res.Reason = d.Allowed, d.Reason
			}
		}
		out.Results = append(out.Results, res)
	}
	writeJSON(c.w, http.StatusOK, out)
	return nil
}
