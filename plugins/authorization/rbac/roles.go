package rbac

import (
	"github.com/palvella/palvella/plugin-sdk/authorization"
)

// Permission allows or denies methods on resources.
type Permission struct {
	// Resources are patterns such as "pipeline:default/*" (see Match).
	Resources []string `json:"resources"`
	// Methods are read, write, run, approve, use, credentialRead, or "*"
	// for all of them.
	Methods []string             `json:"methods"`
	Effect  authorization.Effect `json:"effect"`
}

// Role is a named list of permissions.
type Role struct {
	Name        string       `json:"name"`
	Description string       `json:"description,omitempty"`
	Permissions []Permission `json:"permissions"`
}

var (
	all   = []string{"*"}
	allow = authorization.EffectAllow
)

// BuiltinRoles returns the roles every configuration has:
//
//   - admin may do everything, including reading credential values
//     (credentialRead) and managing tokens and plugins.
//   - operator may read everything, and write, run and approve pipelines,
//     runs, triggers, credentials and namespaces, and have pipelines use
//     credentials, and drain workers. Operators manage credentials without seeing their
//     values, and cannot issue tokens or install plugins (which would let
//     them grant themselves more).
//   - developer may read everything, write and run pipelines, runs and
//     triggers, and have pipelines use credentials (use). Developers
//     cannot approve (approval is its own method, approve), change
//     credentials or read their values.
//   - viewer may read everything and change nothing.
//   - worker is a remote worker's (`palvella worker`): it may lease jobs
//     through the server and report them (lease on worker:*), and nothing
//     else: no API route answers it. The credentials of the jobs it
//     leases reach it with them, checked by the server against the
//     job's live execution.
//
// "read" on a credential is its metadata; "use" is naming it in a pipeline
// (the server checks it for whoever applies or starts the pipeline); its
// values need credentialRead, which no API route offers.
// The built-in roles have no Deny permissions, so that holding one more
// role never takes a permission away.
func BuiltinRoles() []Role {
	return []Role{
		{Name: "admin", Description: "everything", Permissions: []Permission{
			{Resources: all, Methods: all, Effect: allow},
		}},
		{Name: "operator", Description: "read everything; write, run and approve pipelines, runs, triggers, credentials and namespaces", Permissions: []Permission{
			{Resources: all, Methods: []string{authorization.MethodRead}, Effect: allow},
			{Resources: []string{"pipeline:*", "run:*", "trigger:*", "credential:*", "namespace:*"}, Methods: []string{authorization.MethodWrite, authorization.MethodRun, authorization.MethodApprove}, Effect: allow},
			{Resources: []string{"worker:*"}, Methods: []string{authorization.MethodWrite}, Effect: allow},
			{Resources: []string{"credential:*"}, Methods: []string{authorization.MethodUse}, Effect: allow},
		}},
		{Name: "developer", Description: "read everything; write and run pipelines, runs and triggers", Permissions: []Permission{
			{Resources: all, Methods: []string{authorization.MethodRead}, Effect: allow},
			{Resources: []string{"pipeline:*", "run:*", "trigger:*"}, Methods: []string{authorization.MethodWrite, authorization.MethodRun}, Effect: allow},
			{Resources: []string{"credential:*"}, Methods: []string{authorization.MethodUse}, Effect: allow},
		}},
		{Name: "viewer", Description: "read everything", Permissions: []Permission{
			{Resources: all, Methods: []string{authorization.MethodRead}, Effect: allow},
		}},
		{Name: "worker", Description: "a remote worker: lease jobs through the server and report them, nothing else", Permissions: []Permission{
			{Resources: []string{"worker:*"}, Methods: []string{authorization.MethodLease}, Effect: allow},
		}},
	}
}
