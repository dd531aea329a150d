package sdk

import (
	goplugin "github.com/hashicorp/go-plugin"
)

// ProtocolVersion is the newest plugin protocol this SDK speaks. It is bumped
// on every incompatible change of the contracts in proto/; a plugin and the
// core agree on the highest version both speak.
const ProtocolVersion = 1

// ProtocolVersions lists every protocol version this SDK can serve.
var ProtocolVersions = []int{1}

// Handshake is the go-plugin handshake shared by the core and every plugin.
// The magic cookie is not a secret: it only tells a plugin binary that it was
// started by Palvella, and tells Palvella that a binary is one of its plugins.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   MagicCookieKey,
	MagicCookieValue: MagicCookieValue,
}

// The magic cookie, spelled out for plugins written in other languages.
const (
	MagicCookieKey   = "PALVELLA_PLUGIN_MAGIC_COOKIE"
	MagicCookieValue = "d5a1f2b3c0e84b7f9a6e2c1d8b0f4a37"
)

// Plugin names in the go-plugin plugin set. The base service is dispensed as
// "plugin"; each category under its own name.
const BasePluginName = "plugin"

// Service ties a category's gRPC shim to an implementation. Each category
// package returns one from its Service function; pass them to [Serve].
type Service struct {
	Category Category
	Plugin   goplugin.Plugin
}
