// Package clientset holds the host side of the plugin protocol: the
// go-plugin plugin sets that dispense a client for each category. The core
// and the conformance kit's launcher use it; plugins do not.
package clientset

import (
	goplugin "github.com/hashicorp/go-plugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/credential"
)

// PluginSet returns the plugins a host dispenses, keyed by the names a
// plugin serves them under: "plugin" for the base service, and each
// category's name.
func PluginSet() goplugin.PluginSet {
	return goplugin.PluginSet{
		sdk.BasePluginName:              &sdk.BasePlugin{},
		sdk.CategoryCredential.String(): &credential.GRPCPlugin{},
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
