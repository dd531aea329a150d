// Package index defines the registry index document: its types, a strict
// parser that names the offending field, the canonical encoding that
// signatures cover, and the verification of the signature chain
// (pinned root keys -> publisher delegations -> artifact signatures).
//
// Root public keys are never taken from the index: the caller pins them.
package index

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/palvella/palvella/registry"
)

// FormatVersion is the index format this package reads and writes.
const FormatVersion = 1

// MaxSize is the largest index Parse accepts, in bytes.
const MaxSize = 256 << 20

// DefaultMaxSize is the largest signed index a client reads from a
// registry unless configured otherwise; the read stops at the first byte
// beyond it, before anything is parsed.
const DefaultMaxSize = 32 << 20

// Domain prefixes put in front of the canonical bytes before signing, so a
// signature made for one kind of statement is never valid for another.
const (
	IndexDomain      = "palvella-index-v1\n"
	DelegationDomain = "palvella-delegation-v1\n"
	ArtifactDomain   = "palvella-artifact-v1\n"
)

// Index is a registry's index document.
type Index struct {
	// FormatVersion is the format of this document; always FormatVersion.
	FormatVersion int `json:"formatVersion"`
	// Name is the registry's name.
	Name string `json:"name"`
	// Version grows by at least one at every change; clients refuse to go back.
	Version int64 `json:"version"`
	// Expires is an RFC 3339 time after which clients refuse the index.
	Expires string `json:"expires"`
	// Publishers are the delegations from the root keys to publisher keys.
	Publishers []Publisher `json:"publishers"`
	// Plugins are the plugins this registry offers.
	Plugins []Plugin `json:"plugins"`
	// RootChain is the registry's root history, version 1 first (see
	// RootLink); absent in indexes written before root chaining.
	RootChain []RootLink `json:"rootChain,omitempty"`
	// Revoked are the keys the root revoked (see Revocation).
	Revoked []Revocation `json:"revoked,omitempty"`
	// Signatures are signatures over the index without this field: by the
	// current root keys, or by a publisher delegated to sign the index.
	Signatures []Signature `json:"signatures,omitempty"`

	payload  []byte         // signed bytes as read by Parse
	byName   map[string]int // plugin name -> position, built by Parse
	envelope bool           // read from, and written as, an envelope
}

// Signature is one ed25519 signature by the key with KeyID.
type Signature struct {
	KeyID string `json:"keyId"`
	Sig   string `json:"sig"`
}

// Publisher delegates signing of plugins whose names match Plugins (path.Match
// patterns such as "engine-*") to the key PublicKey until Expires.
type Publisher struct {
	KeyID     string   `json:"keyId"`
	PublicKey string   `json:"publicKey"`
	Plugins   []string `json:"plugins"`
	Expires   string   `json:"expires"`
	// Index lets the key sign the index itself (its version, expiry and
	// plugin list), so a publisher can publish while the root key stays
	// offline. The artifacts it signs are still limited to Plugins.
	Index      bool        `json:"index,omitempty"`
	Signatures []Signature `json:"signatures"`
}

// Plugin is one plugin and its versions.
type Plugin struct {
	Name        string    `json:"name"`
	Categories  []string  `json:"categories"`
	Description string    `json:"description,omitempty"`
	License     string    `json:"license"`
	Homepage    string    `json:"homepage,omitempty"`
	Official    bool      `json:"official,omitempty"`
	Versions    []Version `json:"versions"`
}

// Version is one released version of a plugin.
type Version struct {
	Version          string     `json:"version"`
	ProtocolVersions []int      `json:"protocolVersions"`
	Core             string     `json:"core,omitempty"`
	Artifacts        []Artifact `json:"artifacts"`
	Yanked           *Yanked    `json:"yanked,omitempty"`
	Advisory         string     `json:"advisory,omitempty"`
}

// Yanked marks a withdrawn version.
type Yanked struct {
	Reason string `json:"reason"`
}

// Artifact is the download for one platform.
type Artifact struct {
	OS     string `json:"os"`
	Arch   string `json:"arch"`
	URL    string `json:"url"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Format is "binary" (default when empty) or "tar.gz".
	Format string `json:"format,omitempty"`
	// Entry is the executable's path inside a tar.gz artifact (default: the plugin name).
	Entry string `json:"entry,omitempty"`
	// Signatures are publisher signatures over ArtifactStatement.
	Signatures []Signature `json:"signatures,omitempty"`
}

// Formats of artifacts.
const (
	FormatBinary = "binary"
	FormatTarGz  = "tar.gz"
)

// IsArchive reports whether the artifact is a tar.gz holding the executable.
func (a *Artifact) IsArchive() bool { return a.Format == FormatTarGz }

// EntryName returns the path of the executable inside an archive artifact.
func (a *Artifact) EntryName(plugin string) string {
	if a.Entry != "" {
		return a.Entry
	}
	return plugin
}

// Platform returns "os/arch".
func (a *Artifact) Platform() string { return a.OS + "/" + a.Arch }

// Parse reads and validates an index. Every problem is an *registry.Error
// of kind ErrInvalidIndex whose Field names the offending field.
//
// An envelope (format 2) is parsed too, without checking its signatures:
// Open is how a client reads a registry's index.
func Parse(data []byte) (*Index, error) {
	if IsEnvelope(data) {
		env, err := decodeEnvelope(data)
		if err != nil {
			return nil, err
		}
		return fromEnvelope(env)
	}
	if len(data) > MaxSize {
		return nil, invalid("index", fmt.Sprintf("larger than %d bytes", MaxSize))
	}
	if err := validUTF8(data); err != nil {
		return nil, err
	}
	tree, err := decodeTree(data)
	if err != nil {
		return nil, asInvalid(err)
	}
	top, ok := tree.(map[string]any)
	if !ok {
		return nil, invalid("index", "must be a JSON object")
	}
	if err := checkKeys(top); err != nil {
		return nil, err
	}
	var ix Index
	if err := json.Unmarshal(data, &ix); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, invalid(te.Field, "must be of type "+jsonKind(te.Type.Kind().String()))
		}
		return nil, invalid("index", err.Error())
	}
	if err := ix.Validate(); err != nil {
		return nil, err
	}
	unsigned := make(map[string]any, len(top))
	for k, v := range top {
		if k != "signatures" {
			unsigned[k] = v
		}
	}
	c, err := Canonical(unsigned)
	if err != nil {
		return nil, invalid("index", err.Error())
	}
	ix.payload = append([]byte(IndexDomain), c...)
	ix.byName = make(map[string]int, len(ix.Plugins))
	for i := range ix.Plugins {
		ix.byName[ix.Plugins[i].Name] = i
	}
	return &ix, nil
}

func jsonKind(k string) string {
	switch k {
	case "int", "int64", "int32", "uint64":
		return "integer"
	case "slice":
		return "array"
	case "struct", "ptr":
		return "object"
	}
	return k
}

func validUTF8(data []byte) error {
	if !utf8Valid(data) {
		return invalid("index", "is not valid UTF-8")
	}
	return nil
}

func invalid(field, detail string) *registry.Error {
	return &registry.Error{Kind: registry.ErrInvalidIndex, Field: field, Detail: detail}
}

type fieldError struct{ field, msg string }

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

func fieldErr(field, msg string) error { return &fieldError{orRoot(field), msg} }

func asInvalid(err error) error {
	var fe *fieldError
	if errors.As(err, &fe) {
		return invalid(fe.field, fe.msg)
	}
	return &registry.Error{Kind: registry.ErrInvalidIndex, Detail: err.Error()}
}

// Lookup returns the plugin called name, or nil.
func (ix *Index) Lookup(name string) *Plugin {
	if i, ok := ix.byName[name]; ok && i < len(ix.Plugins) && ix.Plugins[i].Name == name {
		return &ix.Plugins[i]
	}
	for i := range ix.Plugins {
		if ix.Plugins[i].Name == name {
			return &ix.Plugins[i]
		}
	}
	return nil
}

// ExpiresAt returns Expires as a time (zero if it does not parse).
func (ix *Index) ExpiresAt() time.Time {
	t, _ := time.Parse(time.RFC3339, ix.Expires)
	return t
}

// Payload returns the bytes the root signatures cover for the index as it
// is now in memory: IndexDomain followed by the canonical encoding of the
// index without its "signatures" field.
func (ix *Index) Payload() ([]byte, error) {
	cp := *ix
	cp.Signatures = nil
	raw, err := json.Marshal(&cp)
	if err != nil {
		return nil, fmt.Errorf("encode index: %w", err)
	}
	tree, err := decodeTree(raw)
	if err != nil {
		return nil, fmt.Errorf("encode index: %w", err)
	}
	c, err := Canonical(tree)
	if err != nil {
		return nil, fmt.Errorf("encode index: %w", err)
	}
	return append([]byte(IndexDomain), c...), nil
}

// Marshal validates the index and encodes it as indented JSON for writing
// (as an envelope, signed by SignRoot, when IsEnvelope).
func (ix *Index) Marshal() ([]byte, error) {
	ix.normalize()
	if err := ix.Validate(); err != nil {
		return nil, err
	}
	if ix.envelope {
		return ix.marshalEnvelope()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(ix); err != nil {
		return nil, fmt.Errorf("encode index: %w", err)
	}
	return buf.Bytes(), nil
}

// SignRoot replaces the root signatures with signatures by keys over the
// index's current content.
func (ix *Index) SignRoot(keys ...ed25519.PrivateKey) error {
	ix.normalize()
	if len(keys) == 0 {
		return registry.Errorf(registry.ErrInvalidArgument, "rootKey", "at least one root key is needed to sign the index")
	}
	if err := ix.Validate(); err != nil {
		return err
	}
	p, err := ix.Payload()
	if ix.envelope {
		var raw []byte
		raw, err = ix.envelopePayload()
		p = append([]byte(EnvelopeDomain), raw...)
	}
	if err != nil {
		return err
	}
	ix.Signatures = ix.Signatures[:0]
	for _, k := range keys {
		ix.Signatures = append(ix.Signatures, signature(k, p))
	}
	ix.payload = p
	return nil
}

// normalize writes empty lists as [] rather than null, as the parser requires.
func (ix *Index) normalize() {
	if ix.Publishers == nil {
		ix.Publishers = []Publisher{}
	}
	if ix.Plugins == nil {
		ix.Plugins = []Plugin{}
	}
}

// SignedPayload returns the bytes the root signatures cover: as read by
// Parse, or computed from the current content for a built index.
func (ix *Index) SignedPayload() ([]byte, error) {
	if ix.payload != nil {
		return ix.payload, nil
	}
	return ix.Payload()
}
