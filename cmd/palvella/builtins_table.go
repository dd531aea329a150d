package main

import (
	"path/filepath"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugins/action/standard"
	"github.com/palvella/palvella/plugins/authentication/token"
	"github.com/palvella/palvella/plugins/authorization/rbac"
	credbuiltin "github.com/palvella/palvella/plugins/credential/builtin"
	"github.com/palvella/palvella/plugins/database/postgres"
	"github.com/palvella/palvella/plugins/database/sqlite"
	enginedocker "github.com/palvella/palvella/plugins/engine/docker"
	enginekubernetes "github.com/palvella/palvella/plugins/engine/kubernetes"
	"github.com/palvella/palvella/plugins/engine/local"
	enginenomad "github.com/palvella/palvella/plugins/engine/nomad"
	"github.com/palvella/palvella/plugins/job/terraform"
	"github.com/palvella/palvella/plugins/storage/filesystem"
)

// builtinTable is the first-party plugins compiled into palvella.
var builtinTable = []Builtin{
	{Name: token.Name, Version: token.Version, Categories: []sdk.Category{sdk.CategoryAuthentication}, Serve: token.Serve,
		Defaults:    under("path", "tokens.db"),
		Description: "API tokens: random, shown once, stored hashed, with expiry, roles and namespaces."},
	{Name: rbac.Name, Version: rbac.Version, Categories: []sdk.Category{sdk.CategoryAuthorization}, Serve: rbac.Serve,
		Description: "Role-based access: Allow and Deny permissions on resource patterns; deny wins."},
	{Name: credbuiltin.Name, Version: credbuiltin.Version, Categories: []sdk.Category{sdk.CategoryCredential}, Serve: credbuiltin.Serve, SecretKey: true,
		Defaults:    under("path", "credentials.db"),
		Description: "Credentials encrypted at rest with AES-256-GCM."},
	{Name: sqlite.Name, Version: sqlite.Version, Categories: []sdk.Category{sdk.CategoryDatabase}, Serve: sqlite.Serve,
		Defaults:    under("path", "palvella.db"),
		Description: "The embedded default database: resources with revisions and a work queue in sqlite."},
	// After sqlite, which stays the database of a server that chooses none.
	{Name: postgres.Name, Version: postgres.Version, Categories: []sdk.Category{sdk.CategoryDatabase}, Serve: postgres.Serve,
		Description: "PostgreSQL for several servers on one database: chosen with database: {plugin: database-postgres, config: {dsn: ...}}."},
	{Name: filesystem.Name, Version: filesystem.Version, Categories: []sdk.Category{sdk.CategoryStorage}, Serve: filesystem.Serve,
		Defaults:    under("root", "storage"),
		Description: "Blobs by scope in a directory tree."},
	{Name: terraform.Name, Version: terraform.Version, Categories: []sdk.Category{sdk.CategoryJob}, Serve: terraform.Serve, Describe: terraform.New().Describe,
		Description: "Terraform job types: plan, approve-if-changed, apply."},
	{Name: standard.Name, Version: standard.Version, Categories: []sdk.Category{sdk.CategoryAction}, Serve: standard.Serve, Describe: standard.New().Describe,
		Description: "Standard actions: run, approval, match, compare, notify, fail."},
	{Name: local.Name, Version: local.Version, Categories: []sdk.Category{sdk.CategoryEngine}, Serve: local.Serve,
		Defaults:    under("root", "workspaces"),
		Description: "Runs commands in a shell on the worker's host, in a fresh workspace per job."},
	{Name: enginedocker.Name, Version: enginedocker.Version, Categories: []sdk.Category{sdk.CategoryEngine}, Serve: enginedocker.Serve,
		Defaults:    under("state_dir", "engine-docker"),
		Description: "Runs each job in containers of its image on a Docker daemon, with a volume and a network of its own."},
	{Name: enginenomad.Name, Version: enginenomad.Version, Categories: []sdk.Category{sdk.CategoryEngine}, Serve: enginenomad.Serve,
		Defaults:    under("state_dir", "engine-nomad"),
		Description: "Runs each job as a Nomad batch job (docker or raw_exec driver), its commands executed in the job's allocation."},
	{Name: enginekubernetes.Name, Version: enginekubernetes.Version, Categories: []sdk.Category{sdk.CategoryEngine}, Serve: enginekubernetes.Serve,
		Description: "Runs each command of a job in a pod of its image on a Kubernetes cluster, its environment in a Secret made for it."},
}

// under is the default of a builtin that keeps its files in one place
// under the server's home.
func under(key, name string) func(home string) map[string]any {
	return func(home string) map[string]any { return map[string]any{key: filepath.Join(home, name)} }
}
