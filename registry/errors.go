// Package registry holds what every part of the plugin registry library
// shares: the sentinel errors and the typed Error that carries them.
//
// The work is split into small packages named for what they hold:
//
//   - index: the index document, its parser and canonical encoding, and the
//     verification of the root and publisher signature chain.
//   - sign: ed25519 key generation, key files and key ids.
//   - manifest: reading a plugin binary's manifest with `--describe`.
//   - resolve: picking a version for NAME@CONSTRAINT under a trust policy.
//   - lock: the lock file of installed plugins.
//   - client: sources, rollback/freeze state, download, install, upgrade,
//     remove, and the registries configuration (registries.json).
//   - owner: who may serve a plugin name.
//   - publish: the publisher's operations (init, publish, yank, delegate, the
//     key lifecycle, verify, bundles).
//   - server: the static registry HTTP handler.
//
// Every refusal is an *Error whose Kind is one of the sentinels below, so a
// caller checks it with errors.Is and never with the message text.
package registry

import (
	"errors"
	"strings"
)

// Sentinel errors. Check them with errors.Is.
var (
	// ErrNotFound: no registry lists the plugin, or no version satisfies the request.
	ErrNotFound = errors.New("registry: plugin not found")
	// ErrInvalidIndex: an index, lock or bundle does not follow the format.
	ErrInvalidIndex = errors.New("registry: invalid index")
	// ErrSignature: a signature is missing, malformed, by an untrusted key or does not verify.
	ErrSignature = errors.New("registry: signature not trusted")
	// ErrChecksum: content does not match its recorded sha256.
	ErrChecksum = errors.New("registry: checksum mismatch")
	// ErrSize: content is larger or smaller than its declared size.
	ErrSize = errors.New("registry: size mismatch")
	// ErrRollback: an index older than one already seen was served.
	ErrRollback = errors.New("registry: index rollback")
	// ErrExpired: an index, or a publisher delegation, is past its expiry.
	ErrExpired = errors.New("registry: expired")
	// ErrYanked: the requested version was withdrawn by its publisher.
	ErrYanked = errors.New("registry: version yanked")
	// ErrIncompatible: no version speaks a plugin protocol or supports the core version in use.
	ErrIncompatible = errors.New("registry: incompatible version")
	// ErrPlatform: the version has no artifact for this operating system and architecture.
	ErrPlatform = errors.New("registry: no artifact for platform")
	// ErrPolicy: the trust policy (official only, licenses, publishers) refuses the version.
	ErrPolicy = errors.New("registry: refused by trust policy")
	// ErrUnsafePath: an archive entry or an artifact path would escape its directory.
	ErrUnsafePath = errors.New("registry: unsafe path")
	// ErrInvalidArgument: a caller passed a bad argument.
	ErrInvalidArgument = errors.New("registry: invalid argument")
	// ErrAmbiguous: more than one configured registry may serve a plugin
	// name; the caller must choose one.
	ErrAmbiguous = errors.New("registry: ambiguous plugin name")
	// ErrNotOwner: a registry lists a plugin name it may not serve (a
	// first-party name, or a name another registry was added for).
	ErrNotOwner = errors.New("registry: name not owned by registry")
	// ErrReplace: the install would replace a builtin plugin, or a plugin
	// installed from another source, and the caller did not ask for that.
	ErrReplace = errors.New("registry: would replace a plugin from another source")
	// ErrRevoked: a key was revoked by its registry's root; signatures by
	// it no longer count. It is the cause (Err) of an ErrSignature.
	ErrRevoked = errors.New("registry: key revoked")
	// ErrUnreachable: a registry's index could not be read (network,
	// server or file error).
	ErrUnreachable = errors.New("registry: registry unreachable")
)

// Error is a refusal with enough context for a user to act on it.
type Error struct {
	// Kind is one of the sentinels above; errors.Is matches it.
	Kind error
	// Registry names the registry involved, if any.
	Registry string
	// Plugin and Version name what was being resolved or installed, if any.
	Plugin  string
	Version string
	// Field is the path of the offending field, e.g. plugins[3].versions[0].sha256.
	Field string
	// Detail says what was wrong.
	Detail string
	// Hint says what to do about it.
	Hint string
	// Err is the underlying cause, if any.
	Err error
}

// Error renders "KIND: [registry R: ][plugin N@V: ][field: ]detail[: cause] (hint)".
func (e *Error) Error() string {
	var b strings.Builder
	if e.Kind != nil {
		b.WriteString(e.Kind.Error())
	} else {
		b.WriteString("registry: error")
	}
	if e.Registry != "" {
		b.WriteString(": registry ")
		b.WriteString(quoteIfNeeded(e.Registry))
	}
	if e.Plugin != "" {
		b.WriteString(": plugin ")
		b.WriteString(e.Plugin)
		if e.Version != "" {
			b.WriteString("@")
			b.WriteString(e.Version)
		}
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Hint != "" {
		b.WriteString(" (")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// Is reports whether target is the Kind of this error.
func (e *Error) Is(target error) bool { return e.Kind != nil && target == e.Kind }

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

func quoteIfNeeded(s string) string {
	if strings.ContainsAny(s, " \t\"") {
		return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
	}
	return s
}

// Errorf builds an *Error of kind with a field and a detail.
func Errorf(kind error, field, detail string) *Error {
	return &Error{Kind: kind, Field: field, Detail: detail}
}
