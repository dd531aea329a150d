package server

import (
	"context"

	"github.com/palvella/palvella/core/api"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

var _ api.RegistryLister = (*livePlugins)(nil)

// Registries lists the plugin registries of the server's home with
// Config.Registries: the API only reads them (they are changed with
// `palvella registry add` and `remove` on the server's machine).
func (l *livePlugins) Registries(ctx context.Context) ([]api.Registry, error) {
	if l.cfg.Registries == nil {
		return nil, sdk.Errorf(sdk.ErrUnimplemented, "", "this server was not told where its registries are configured")
	}
	rs, err := l.cfg.Registries(ctx)
	if err != nil {
		return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "", "read the registries configuration: %s", err)
	}
	return rs, nil
}
