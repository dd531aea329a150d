// Command renamed serves a first-party plugin of a single-instance
// category under another name: the tests choose it in a server's
// configuration to show that the core looks plugins up by category, never
// by a first-party name. Build it with
//
//	go build -ldflags "-X main.category=database -X main.name=database-other"
package main

import (
	"context"
	"fmt"
	"os"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"github.com/palvella/palvella/plugin-sdk/authorization"
	"github.com/palvella/palvella/plugin-sdk/credential"
	"github.com/palvella/palvella/plugin-sdk/database"
	"github.com/palvella/palvella/plugin-sdk/storage"
	"github.com/palvella/palvella/plugins/authentication/token"
	"github.com/palvella/palvella/plugins/authorization/rbac"
	credbuiltin "github.com/palvella/palvella/plugins/credential/builtin"
	"github.com/palvella/palvella/plugins/database/sqlite"
	"github.com/palvella/palvella/plugins/storage/filesystem"
)

var category, name string

type describer interface {
	Describe(context.Context) (*sdk.Manifest, error)
}

// rename answers Describe with another name and version.
func rename(d describer) func(context.Context) (*sdk.Manifest, error) {
	return func(ctx context.Context) (*sdk.Manifest, error) {
		m, err := d.Describe(ctx)
		if err != nil {
			return nil, err
		}
		m.Name, m.Version = name, "9.9.9"
		return m, nil
	}
}

type db struct{ *sqlite.Plugin }

func (p db) Describe(ctx context.Context) (*sdk.Manifest, error) { return rename(p.Plugin)(ctx) }

type store struct{ *filesystem.Plugin }

func (p store) Describe(ctx context.Context) (*sdk.Manifest, error) { return rename(p.Plugin)(ctx) }

type creds struct{ *credbuiltin.Plugin }

func (p creds) Describe(ctx context.Context) (*sdk.Manifest, error) { return rename(p.Plugin)(ctx) }

type authn struct{ *token.Plugin }

func (p authn) Describe(ctx context.Context) (*sdk.Manifest, error) { return rename(p.Plugin)(ctx) }

type authz struct{ *rbac.Plugin }

func (p authz) Describe(ctx context.Context) (*sdk.Manifest, error) { return rename(p.Plugin)(ctx) }

func main() {
	switch category {
	case "database":
		p := db{sqlite.New()}
		os.Exit(sdk.ServeWith(p, []sdk.Service{database.Service(p)}))
	case "storage":
		p := store{filesystem.New()}
		os.Exit(sdk.ServeWith(p, []sdk.Service{storage.Service(p)}))
	case "credential":
		p := creds{credbuiltin.New()}
		os.Exit(sdk.ServeWith(p, []sdk.Service{credential.Service(p)}))
	case "authentication":
		p := authn{token.New()}
		os.Exit(sdk.ServeWith(p, []sdk.Service{authentication.Service(p)}))
	case "authorization":
		p := authz{rbac.New()}
		os.Exit(sdk.ServeWith(p, []sdk.Service{authorization.Service(p)}))
	}
	fmt.Fprintf(os.Stderr, "renamed: no category %q\n", category)
	os.Exit(2)
}
