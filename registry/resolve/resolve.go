// Package resolve picks the version of a plugin to install for a request
// NAME@CONSTRAINT from verified indexes, a trust policy, the core's plugin
// protocol versions and the platform.
//
// Which registry may serve a name is decided by package owner, never by
// the configured order: first-party names belong to registries signed by
// the first-party root, a registry added for name patterns owns them, and
// a name that two registries may serve needs an explicit choice. This is
// what stops a public registry from shadowing a private plugin (dependency
// confusion), and a private one from taking a first-party name.
package resolve

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/index"
	"github.com/palvella/palvella/registry/owner"
)

// Registry is one verified index, in configuration order.
type Registry struct {
	// Name is the registry's configured name.
	Name string
	// Index is the parsed, verified index.
	Index *index.Index
	// Trust checks artifact signatures; nil when the index was accepted
	// without root keys (only possible with Policy.AllowUnsigned).
	Trust *index.Trust
	// Names are the name patterns the registry was added for; empty means
	// an open registry (see package owner).
	Names []string
	// FirstParty is true when Index was verified with the first-party
	// (public registry) root key: only then are its plugins official.
	FirstParty bool
}

// Official reports whether plugin p of registry r is official: listed as
// such in an index signed by the first-party root. The flag in any other
// index is ignored, since its publisher could set it.
func (r *Registry) Official(p *index.Plugin) bool { return r.FirstParty && p != nil && p.Official }

// Rules returns the ownership rules of regs: builtins (names compiled into
// the core) and the official plugins of first-party registries are
// first-party names.
func Rules(regs []Registry, builtins []string) owner.Rules {
	reserved := map[string]bool{}
	for _, b := range builtins {
		reserved[b] = true
	}
	rules := owner.Rules{Reserved: func(n string) bool { return reserved[n] }}
	for i := range regs {
		r := &regs[i]
		rules.Claims = append(rules.Claims, owner.Claim{Registry: r.Name, Names: r.Names, FirstParty: r.FirstParty})
		if r.FirstParty && r.Index != nil {
			for j := range r.Index.Plugins {
				if r.Index.Plugins[j].Official {
					reserved[r.Index.Plugins[j].Name] = true
				}
			}
		}
	}
	return rules
}

// Request is what the user asked for.
type Request struct {
	// Name of the plugin, e.g. "engine-docker".
	Name string
	// Constraint such as "1.2.3", "^1.2", "~1.2", ">=1.0 <2.0"; empty means any
	// release. Prereleases are considered only when the constraint names one.
	Constraint string
	// OS and Arch default to runtime.GOOS and runtime.GOARCH.
	OS, Arch string
	// Protocols are the plugin protocol versions the core speaks; empty
	// means any.
	Protocols []int
	// CoreVersion is the running core's version, checked against each
	// version's "core" constraint; empty skips the check.
	CoreVersion string
	// AllowYanked permits a yanked version, and only when the constraint
	// pins that exact version.
	AllowYanked bool
	// Registry, when set, is the registry the user chose: the only one
	// consulted, and it must be allowed to serve the name.
	Registry string
	// Prefer breaks a tie between registries that may all serve the name
	// (the registry recorded in the lock for an installed plugin).
	Prefer string
	// Builtins are the names of the plugins compiled into the core:
	// first-party names.
	Builtins []string
}

// Policy is the trust policy.
type Policy struct {
	// AllowUnsigned accepts artifacts with no signature at all (a bad
	// signature is always refused). The zero value requires signatures.
	AllowUnsigned bool
	// TrustedPublishers, when not empty, are the only publisher key ids
	// whose signatures are accepted.
	TrustedPublishers []string
	// OfficialOnly refuses plugins that are not official (see Registry.Official).
	OfficialOnly bool
	// AllowedLicenses, when not empty, are the only licenses accepted.
	AllowedLicenses []string
}

// Selection is the chosen version.
type Selection struct {
	// Registry is the name of the registry that won.
	Registry string
	Plugin   *index.Plugin
	Version  *index.Version
	Artifact *index.Artifact
	// SignedBy are the publisher key ids whose signatures verified.
	SignedBy []string
	// Notices are messages the user should see: advisories, yanked reason.
	Notices []string
}

// Resolve picks the highest version satisfying req and pol from the first
// registry that lists req.Name.
func Resolve(regs []Registry, req Request, pol Policy, now time.Time) (*Selection, error) {
	if req.Name == "" {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "name", "plugin name is empty")
	}
	cons, exact, err := ParseConstraint(req.Constraint)
	if err != nil {
		return nil, &registry.Error{Kind: registry.ErrInvalidArgument, Plugin: req.Name, Field: "constraint",
			Detail: fmt.Sprintf("%q is not a version constraint", req.Constraint), Err: err,
			Hint: `use forms such as "1.2.3", "^1.2", "~1.2" or ">=1.0 <2.0"`}
	}
	if req.OS == "" {
		req.OS = runtime.GOOS
	}
	if req.Arch == "" {
		req.Arch = runtime.GOARCH
	}
	var core *semver.Version
	if req.CoreVersion != "" {
		if core, err = semver.NewVersion(req.CoreVersion); err != nil {
			return nil, registry.Errorf(registry.ErrInvalidArgument, "coreVersion", "is not a semantic version")
		}
	}
	reg, plugin, err := Owner(regs, req)
	if err != nil {
		return nil, err
	}
	base := registry.Error{Registry: reg.Name, Plugin: req.Name}
	if pol.OfficialOnly && !reg.Official(plugin) {
		e := base
		e.Kind, e.Detail, e.Hint = registry.ErrPolicy, "plugin is not official", "the trust policy allows official plugins only"
		return nil, &e
	}
	if len(pol.AllowedLicenses) > 0 && !slices.Contains(pol.AllowedLicenses, plugin.License) {
		e := base
		e.Kind, e.Detail = registry.ErrPolicy, "license "+plugin.License+" is not allowed"
		e.Hint = "allowed licenses: " + strings.Join(pol.AllowedLicenses, ", ")
		return nil, &e
	}

	type cand struct {
		v  *semver.Version
		iv *index.Version
	}
	var cands []cand
	var all []string
	for i := range plugin.Versions {
		iv := &plugin.Versions[i]
		v, err := semver.StrictNewVersion(iv.Version)
		if err != nil {
			continue // Parse refuses these; be safe with hand-built indexes
		}
		all = append(all, iv.Version)
		if cons.Check(v) {
			cands = append(cands, cand{v, iv})
		}
	}
	if len(cands) == 0 {
		e := base
		e.Kind = registry.ErrNotFound
		e.Detail = fmt.Sprintf("no version matches %q (available: %s)", constraintText(req.Constraint), strings.Join(all, ", "))
		e.Hint = "widen the constraint"
		return nil, &e
	}
	slices.SortFunc(cands, func(a, b cand) int { return b.v.Compare(a.v) })

	var first *registry.Error
	var reasons []string
	for _, c := range cands {
		sel, rerr := check(reg, plugin, c.iv, exact, req, pol, core, now)
		if rerr == nil {
			return sel, nil
		}
		if errors.Is(rerr, registry.ErrSignature) {
			// A signature that does not verify is evidence of tampering:
			// stop, rather than quietly fall back to an older version.
			return nil, rerr
		}
		if first == nil {
			first = rerr
		}
		if len(reasons) < 5 {
			reasons = append(reasons, c.iv.Version+": "+rerr.Detail)
		}
	}
	e := *first
	e.Version = ""
	e.Detail = fmt.Sprintf("no version matching %q can be installed: %s", constraintText(req.Constraint), strings.Join(reasons, "; "))
	return nil, &e
}

// Owner returns the registry that serves req.Name and its entry: the one
// the user chose (req.Registry), or else the only registry that both lists
// the name and may serve it, or else req.Prefer if it is one of several.
// Several without a choice is ErrAmbiguous; a chosen registry that may not
// serve the name is ErrNotOwner. Registries whose Index is nil (not read)
// list nothing, but their claims still count.
func Owner(regs []Registry, req Request) (*Registry, *index.Plugin, error) {
	rules := Rules(regs, req.Builtins)
	var lists, read []string
	for i := range regs {
		if regs[i].Index == nil {
			continue
		}
		read = append(read, regs[i].Name)
		if regs[i].Index.Lookup(req.Name) != nil {
			lists = append(lists, regs[i].Name)
		}
	}
	byName := func(n string) *Registry {
		for i := range regs {
			if regs[i].Name == n {
				return &regs[i]
			}
		}
		return nil
	}
	if req.Registry != "" {
		r := byName(req.Registry)
		if r == nil || r.Index == nil {
			return nil, nil, &registry.Error{Kind: registry.ErrNotFound, Registry: req.Registry, Plugin: req.Name,
				Detail: "no such registry is configured", Hint: "see palvella registry list"}
		}
		if err := rules.MayServe(r.Name, req.Name); err != nil {
			return nil, nil, err
		}
		p := r.Index.Lookup(req.Name)
		if p == nil {
			return nil, nil, &registry.Error{Kind: registry.ErrNotFound, Registry: r.Name, Plugin: req.Name,
				Detail: "the registry does not list it", Hint: "check the spelling, or choose another registry"}
		}
		return r, p, nil
	}
	may, refused := rules.Servers(req.Name, lists)
	switch {
	case len(may) == 1:
		r := byName(may[0])
		return r, r.Index.Lookup(req.Name), nil
	case len(may) > 1 && slices.Contains(may, req.Prefer):
		r := byName(req.Prefer)
		return r, r.Index.Lookup(req.Name), nil
	case len(may) > 1:
		return nil, nil, &registry.Error{Kind: registry.ErrAmbiguous, Plugin: req.Name,
			Detail: "registries " + strings.Join(may, " and ") + " may all serve it",
			Hint:   "choose one with --registry NAME; the choice is recorded in the lock and kept by upgrades"}
	case len(refused) > 0:
		// Listed only by registries that may not serve it: say why.
		var re *registry.Error
		if errors.As(refused[0], &re) {
			return nil, nil, re
		}
		return nil, nil, refused[0]
	}
	return nil, nil, &registry.Error{Kind: registry.ErrNotFound, Plugin: req.Name,
		Detail: "no configured registry lists it (searched: " + strings.Join(read, ", ") + ")",
		Hint:   "check the spelling, or add the registry that publishes it"}
}

func constraintText(c string) string {
	if strings.TrimSpace(c) == "" {
		return "*"
	}
	return c
}

// ParseConstraint parses a constraint; exact reports whether it pins one
// version ("1.2.3" or "=1.2.3").
func ParseConstraint(s string) (c *semver.Constraints, exact bool, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		s = "*"
	}
	if len(s) > 256 {
		return nil, false, fmt.Errorf("constraint longer than 256 characters")
	}
	c, err = semver.NewConstraint(s)
	if err != nil {
		return nil, false, err
	}
	if _, err := semver.StrictNewVersion(strings.TrimSpace(strings.TrimPrefix(s, "="))); err == nil {
		exact = true
	}
	return c, exact, nil
}

func check(reg *Registry, p *index.Plugin, v *index.Version, exact bool, req Request, pol Policy, core *semver.Version, now time.Time) (*Selection, *registry.Error) {
	fail := func(kind error, detail, hint string) *registry.Error {
		return &registry.Error{Kind: kind, Registry: reg.Name, Plugin: p.Name, Version: v.Version, Detail: detail, Hint: hint}
	}
	var notices []string
	if v.Yanked != nil {
		if !exact || !req.AllowYanked {
			return nil, fail(registry.ErrYanked, "yanked: "+v.Yanked.Reason,
				"choose another version; to install it anyway pin it exactly and allow yanked versions")
		}
		notices = append(notices, fmt.Sprintf("%s %s is yanked: %s", p.Name, v.Version, v.Yanked.Reason))
	}
	if len(req.Protocols) > 0 && !sharesProtocol(req.Protocols, v.ProtocolVersions) {
		return nil, fail(registry.ErrIncompatible,
			fmt.Sprintf("speaks plugin protocol %s, this core speaks %s", ints(v.ProtocolVersions), ints(req.Protocols)),
			"pick a version built for a protocol this core speaks, or upgrade palvella")
	}
	if core != nil && v.Core != "" {
		if c, err := semver.NewConstraint(v.Core); err != nil || !c.Check(core) {
			return nil, fail(registry.ErrIncompatible,
				fmt.Sprintf("requires core %s, this core is %s", v.Core, core), "upgrade palvella or pick an older plugin version")
		}
	}
	var art *index.Artifact
	var plats []string
	for i := range v.Artifacts {
		a := &v.Artifacts[i]
		plats = append(plats, a.Platform())
		if a.OS == req.OS && a.Arch == req.Arch {
			art = a
		}
	}
	if art == nil {
		return nil, fail(registry.ErrPlatform,
			fmt.Sprintf("no artifact for %s/%s (built for %s)", req.OS, req.Arch, strings.Join(plats, ", ")),
			"ask the publisher for a build for this platform")
	}
	var signedBy []string
	switch {
	case len(art.Signatures) == 0 && pol.AllowUnsigned && len(pol.TrustedPublishers) == 0:
	case reg.Trust == nil && pol.AllowUnsigned && len(pol.TrustedPublishers) == 0:
		// No pinned root: signatures cannot be checked, so the artifact
		// counts as unsigned, which the policy allows.
	case reg.Trust == nil:
		return nil, fail(registry.ErrSignature, "the registry has no pinned root key, so signatures cannot be checked",
			"pin the registry's root public key")
	default:
		ids, err := reg.Trust.VerifyArtifact(p.Name, v, art, now)
		if err != nil {
			var re *registry.Error
			if errors.As(err, &re) {
				return nil, re
			}
			return nil, &registry.Error{Kind: registry.ErrSignature, Registry: reg.Name, Plugin: p.Name, Version: v.Version, Detail: "checking the signature failed", Err: err}
		}
		signedBy = ids
		if len(pol.TrustedPublishers) > 0 && !slices.ContainsFunc(ids, func(id string) bool { return slices.Contains(pol.TrustedPublishers, id) }) {
			return nil, fail(registry.ErrPolicy, "signed by "+strings.Join(ids, ", ")+", none of which is a trusted publisher",
				"add the publisher key id to the trusted publishers if you trust it")
		}
	}
	if v.Advisory != "" {
		notices = append(notices, fmt.Sprintf("advisory for %s %s: %s", p.Name, v.Version, v.Advisory))
	}
	return &Selection{Registry: reg.Name, Plugin: p, Version: v, Artifact: art, SignedBy: signedBy, Notices: notices}, nil
}

func sharesProtocol(a, b []int) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

func ints(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}
