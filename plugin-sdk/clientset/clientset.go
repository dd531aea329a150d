// Package clientset holds the host side of the plugin protocol: the
// go-plugin plugin sets that dispense a client for each category. The core
// and the conformance kit's launcher use it; plugins do not.
package clientset

import (
	goplugin "github.com/hashicorp/go-plugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/action"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"github.com/palvella/palvella/plugin-sdk/authorization"
	"github.com/palvella/palvella/plugin-sdk/credential"
	"github.com/palvella/palvella/plugin-sdk/database"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugin-sdk/job"
	"github.com/palvella/palvella/plugin-sdk/storage"
)

// PluginSet returns the plugins a host dispenses, keyed by the names a
// plugin serves them under: "plugin" for the base service, and each
// category's name.
func PluginSet() goplugin.PluginSet {
	return goplugin.PluginSet{
		sdk.BasePluginName:                  &sdk.BasePlugin{},
		sdk.CategoryAuthentication.String(): &authentication.GRPCPlugin{},
		sdk.CategoryAuthorization.String():  &authorization.GRPCPlugin{},
		sdk.CategoryCredential.String():     &credential.GRPCPlugin{},
		sdk.CategoryDatabase.String():       &database.GRPCPlugin{},
		sdk.CategoryStorage.String():        &storage.GRPCPlugin{},
		sdk.CategoryJob.String():            &job.GRPCPlugin{},
		sdk.CategoryAction.String():         &action.GRPCPlugin{},
		sdk.CategoryEngine.String():         &engine.GRPCPlugin{},
	}
}

// VersionedPlugins returns the plugin set for every protocol version the
// host speaks.
func VersionedPlugins() map[int]goplugin.PluginSet {
	out := map[int]goplugin.PluginSet{}
	for _, v := range sdk.ProtocolVersions {
		out[v] = PluginSet()
	}
	return out
}
