package wire

// AccessRequest is the body of POST /api/v1/whoami/access: the permissions
// the caller asks whether it has, so that a client (the web UI) shows only
// the buttons and pages it may use.
type AccessRequest struct {
	Checks []AccessCheck `json:"checks"`
}

// AccessCheck is one permission on one resource, written as the
// authorization rules write them ("run:default/deploy/*", "approve").
type AccessCheck struct {
	Resource   string `json:"resource"`
	Permission string `json:"permission"`
}

// AccessResult answers one check.
type AccessResult struct {
	Resource   string `json:"resource"`
	Permission string `json:"permission"`
	Allowed    bool   `json:"allowed"`
	// Reason is the rule that decided, when the authorizer gave one.
	Reason string `json:"reason,omitempty"`
}

// AccessResponse answers the checks in their order.
type AccessResponse struct {
	Results []AccessResult `json:"results"`
}
