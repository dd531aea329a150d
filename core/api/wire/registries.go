package wire

// Registry is one plugin registry of the server's home, as GET
// /api/v1/registries lists it: where plugins are added from, in the order
// `palvella registry list` shows. Keys appear as their ids only.
type Registry struct {
	// Position is its place in the configuration, from 1.
	Position int    `json:"position"`
	Name     string `json:"name"`
	// Location is the registry's URL or directory.
	Location string `json:"location"`
	// Names are the plugin name patterns it was added for (acme-*); empty
	// for an open registry.
	Names []string `json:"names"`
	// RootKeyIDs are the ids of its pinned root keys; BuiltInRootKey says
	// that it is the public registry's key compiled into palvella.
	RootKeyIDs     []string `json:"rootKeyIds"`
	BuiltInRootKey bool     `json:"builtInRootKey,omitempty"`
	// Threshold is how many of the root keys must sign.
	Threshold int `json:"threshold"`
}
