package index

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/palvella/palvella/registry"
)

// EnvelopeFormat is the formatVersion of a signed envelope: the index's
// bytes carried as they were signed, so a client checks the signatures
// over the raw bytes before it decodes any JSON of the signed content
// (docs/design/registry-ownership.md, "Verify before parse").
const EnvelopeFormat = 2

// EnvelopeDomain prefixes the payload's bytes in an envelope's signatures.
const EnvelopeDomain = "palvella-index-v2\n"

// Envelope is index.json in format 2. Payload is the index (format 1,
// without signatures) byte for byte as signed, base64 in the JSON.
// RootChain, Revoked and Publishers repeat the payload's key statements,
// each signed by the root on its own, so that an index signed by a
// publisher can be checked before the payload is decoded.
type Envelope struct {
	FormatVersion int          `json:"formatVersion"`
	Name          string       `json:"name"`
	Payload       []byte       `json:"payload"`
	Signatures    []Signature  `json:"signatures"`
	RootChain     []RootLink   `json:"rootChain,omitempty"`
	Revoked       []Revocation `json:"revoked,omitempty"`
	Publishers    []Publisher  `json:"publishers,omitempty"`
}

// IsEnvelope reports whether data is an index in envelope format. It reads
// only the top-level formatVersion.
func IsEnvelope(data []byte) bool {
	var probe struct {
		FormatVersion json.RawMessage `json:"formatVersion"`
	}
	if json.Unmarshal(data, &probe) != nil {
		return false
	}
	return string(bytes.TrimSpace(probe.FormatVersion)) == "2"
}

// IsEnvelope reports whether ix was read from, and is written as, an
// envelope.
func (ix *Index) IsEnvelope() bool { return ix.envelope }

// UseEnvelope makes SignRoot and Marshal write ix as an envelope.
func (ix *Index) UseEnvelope() { ix.envelope = true }

func decodeEnvelope(data []byte) (*Envelope, error) {
	if len(data) > MaxSize {
		return nil, invalid("index", fmt.Sprintf("larger than %d bytes", MaxSize))
	}
	var env Envelope
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		e := invalid("formatVersion", "unsupported format: 2 is a signed envelope, and this document is not one: "+err.Error())
		e.Hint = "a format 1 index says formatVersion 1"
		return nil, e
	}
	if dec.More() {
		return nil, invalid("index", "data after the envelope")
	}
	switch {
	case env.FormatVersion != EnvelopeFormat:
		return nil, invalid("formatVersion", fmt.Sprintf("must be %d in an envelope", EnvelopeFormat))
	case !registryNameRe.MatchString(env.Name):
		return nil, invalid("name", "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	case len(env.Payload) == 0:
		return nil, invalid("payload", "is empty")
	}
	if err := validSigs("signatures", env.Signatures); err != nil {
		return nil, err
	}
	return &env, nil
}

// keysOnly is the envelope's key statements as an index with no plugins,
// whose signed payload is the envelope's raw payload: what VerifyWith
// needs to check the signatures before the payload is decoded.
func (env *Envelope) keysOnly() (*Index, error) {
	ix := &Index{FormatVersion: FormatVersion, Name: env.Name, Version: 1, Expires: "9999-12-31T00:00:00Z",
		Publishers: env.Publishers, Plugins: []Plugin{}, RootChain: env.RootChain, Revoked: env.Revoked, Signatures: env.Signatures}
	if ix.Publishers == nil {
		ix.Publishers = []Publisher{}
	}
	if err := ix.Validate(); err != nil {
		return nil, err
	}
	ix.payload = append([]byte(EnvelopeDomain), env.Payload...)
	return ix, nil
}

// Open verifies and parses an index read from a registry. An envelope's
// signatures are checked over its raw payload with o before any of the
// payload is decoded; only then is the payload parsed (strictly) and the
// whole index verified again, expiry included. A format 1 index is parsed,
// then verified, as before envelopes.
func Open(data []byte, o VerifyOptions) (*Index, *Trust, error) {
	if !IsEnvelope(data) {
		ix, err := Parse(data)
		if err != nil {
			return nil, nil, err
		}
		t, err := ix.VerifyWith(o)
		if err != nil {
			return nil, nil, err
		}
		return ix, t, nil
	}
	env, err := decodeEnvelope(data)
	if err != nil {
		return nil, nil, err
	}
	keys, err := env.keysOnly()
	if err != nil {
		return nil, nil, err
	}
	pre := o
	pre.IgnoreExpiry = true
	if _, err := keys.VerifyWith(pre); err != nil {
		return nil, nil, err
	}
	ix, err := fromEnvelope(env)
	if err != nil {
		return nil, nil, err
	}
	t, err := ix.VerifyWith(o)
	if err != nil {
		return nil, nil, err
	}
	return ix, t, nil
}

// fromEnvelope parses an envelope's payload (not verifying it) into an
// index whose signed payload and signatures are the envelope's.
func fromEnvelope(env *Envelope) (*Index, error) {
	ix, err := Parse(env.Payload)
	if err != nil {
		return nil, err
	}
	if len(ix.Signatures) > 0 {
		return nil, invalid("payload.signatures", "must be absent: an envelope's signatures are beside its payload")
	}
	if ix.Name != env.Name {
		// The envelope's name is outside the signed bytes: a difference is
		// an edit made after signing.
		return nil, &registry.Error{Kind: registry.ErrSignature, Registry: env.Name, Field: "name",
			Detail: fmt.Sprintf("the index content was altered after signing: the envelope names registry %q, its signed payload %q", env.Name, ix.Name),
			Hint:   "do not use this copy; fetch the index again from the registry, or report it to the registry operator"}
	}
	ix.payload = append([]byte(EnvelopeDomain), env.Payload...)
	ix.Signatures = env.Signatures
	ix.envelope = true
	return ix, nil
}

// envelopePayload is the bytes an envelope carries for ix: its indented
// JSON without signatures.
func (ix *Index) envelopePayload() ([]byte, error) {
	cp := *ix
	cp.Signatures = nil
	cp.envelope = false
	return cp.Marshal()
}

// marshalEnvelope writes ix, signed by SignRoot, as an envelope.
func (ix *Index) marshalEnvelope() ([]byte, error) {
	raw, err := ix.envelopePayload()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(append([]byte(EnvelopeDomain), raw...), ix.payload) {
		return nil, &registry.Error{Kind: registry.ErrInvalidArgument, Field: "index",
			Detail: "the index changed after it was signed; sign it again before writing it"}
	}
	env := Envelope{FormatVersion: EnvelopeFormat, Name: ix.Name, Payload: raw, Signatures: ix.Signatures,
		RootChain: ix.RootChain, Revoked: ix.Revoked, Publishers: ix.Publishers}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&env); err != nil {
		return nil, fmt.Errorf("encode index envelope: %w", err)
	}
	return buf.Bytes(), nil
}
