package index

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/Masterminds/semver/v3"

	"github.com/palvella/palvella/registry/sign"
)

var (
	registryNameRe = sized(`^[A-Za-z0-9][A-Za-z0-9._-]*$`, 1, 64)
	pluginNameRe   = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	patternRe      = sized(`^[a-z0-9*?-]*$`, 1, 64)
	platformRe     = sized(`^[a-z0-9]*$`, 1, 32)
	hex64Re        = sized(`^[0-9a-f]*$`, 64, 64)
	hex128Re       = sized(`^[0-9a-f]*$`, 128, 128)
	keyIDRe        = sized(`^[0-9a-f]*$`, 16, 16)
	licenseRe      = sized(`^[A-Za-z0-9.+() -]*$`, 1, 128)
)

// sizedRE is a pattern whose length in bytes is checked apart. A bounded
// repetition such as {1,128} compiles to a state per repetition: the
// patterns above took a millisecond at every start of the palvella
// binary, builtin plugins included. Their classes are ASCII, so bytes are
// characters.
type sizedRE struct {
	re       *regexp.Regexp
	min, max int
}

func sized(pattern string, min, max int) sizedRE {
	return sizedRE{re: regexp.MustCompile(pattern), min: min, max: max}
}

// MatchString reports whether s has an allowed length and matches.
func (r sizedRE) MatchString(s string) bool {
	return len(s) >= r.min && len(s) <= r.max && r.re.MatchString(s)
}

// Categories are the plugin categories an index may name.
var Categories = []string{"authentication", "authorization", "credential", "database", "storage", "job", "action", "engine"}

const maxPluginNameLen = 64

func utf8Valid(b []byte) bool { return utf8.Valid(b) }

// The JSON type of each field of each object. Unknown fields (which would
// be signed but ignored) and wrongly typed ones are refused with their path.
type jsonType int

const (
	tString jsonType = iota
	tInt
	tBool
	tArray
	tObject
	tStrings
	tInts
)

var typeNames = map[jsonType]string{tString: "a string", tInt: "an integer", tBool: "true or false",
	tArray: "an array", tObject: "an object", tStrings: "an array of strings", tInts: "an array of integers"}

var (
	topKeys = map[string]jsonType{"formatVersion": tInt, "name": tString, "version": tInt, "expires": tString,
		"publishers": tArray, "plugins": tArray, "signatures": tArray, "rootChain": tArray, "revoked": tArray}
	publisherKeys = map[string]jsonType{"keyId": tString, "publicKey": tString, "plugins": tStrings, "expires": tString,
		"index": tBool, "signatures": tArray}
	rootLinkKeys   = map[string]jsonType{"version": tInt, "keys": tStrings, "threshold": tInt, "signatures": tArray}
	revocationKeys = map[string]jsonType{"keyId": tString, "reason": tString, "revoked": tString, "signatures": tArray}
	sigKeys        = map[string]jsonType{"keyId": tString, "sig": tString}
	pluginKeys     = map[string]jsonType{"name": tString, "categories": tStrings, "description": tString, "license": tString,
		"homepage": tString, "official": tBool, "versions": tArray}
	versionKeys = map[string]jsonType{"version": tString, "protocolVersions": tInts, "core": tString, "artifacts": tArray,
		"yanked": tObject, "advisory": tString}
	artifactKeys = map[string]jsonType{"os": tString, "arch": tString, "url": tString, "size": tInt, "sha256": tString,
		"format": tString, "entry": tString, "signatures": tArray}
	yankedKeys = map[string]jsonType{"reason": tString}
)

func checkKeys(top map[string]any) error {
	if err := onlyKeys(top, "", topKeys); err != nil {
		return err
	}
	if err := eachObject(top["signatures"], "signatures", sigKeys, nil); err != nil {
		return err
	}
	for _, part := range []struct {
		name string
		keys map[string]jsonType
	}{{"publishers", publisherKeys}, {"rootChain", rootLinkKeys}, {"revoked", revocationKeys}} {
		if err := eachObject(top[part.name], part.name, part.keys, func(o map[string]any, p string) error {
			return eachObject(o["signatures"], p+".signatures", sigKeys, nil)
		}); err != nil {
			return err
		}
	}
	return eachObject(top["plugins"], "plugins", pluginKeys, func(o map[string]any, p string) error {
		return eachObject(o["versions"], p+".versions", versionKeys, func(o map[string]any, p string) error {
			if y, ok := o["yanked"].(map[string]any); ok {
				if err := onlyKeys(y, p+".yanked", yankedKeys); err != nil {
					return err
				}
			}
			return eachObject(o["artifacts"], p+".artifacts", artifactKeys, func(o map[string]any, p string) error {
				return eachObject(o["signatures"], p+".signatures", sigKeys, nil)
			})
		})
	})
}

func onlyKeys(o map[string]any, p string, keys map[string]jsonType) error {
	names := make([]string, 0, len(o))
	for k := range o {
		names = append(names, k)
	}
	slices.Sort(names) // report the same problem first every time
	for _, k := range names {
		v := o[k]
		t, ok := keys[k]
		if !ok {
			return invalid(joinPath(p, k), "unknown field")
		}
		if err := checkType(v, t, joinPath(p, k)); err != nil {
			return err
		}
	}
	return nil
}

func checkType(v any, t jsonType, p string) error {
	ok := false
	switch t {
	case tString:
		_, ok = v.(string)
	case tInt:
		_, ok = v.(json.Number) // decodeTree admits integers only
	case tBool:
		_, ok = v.(bool)
	case tObject:
		_, ok = v.(map[string]any)
	case tArray:
		_, ok = v.([]any)
	case tStrings, tInts:
		arr, isArr := v.([]any)
		if !isArr {
			break
		}
		for i, e := range arr {
			et := tString
			if t == tInts {
				et = tInt
			}
			if err := checkType(e, et, fmt.Sprintf("%s[%d]", p, i)); err != nil {
				return err
			}
		}
		ok = true
	}
	if !ok {
		return invalid(p, "must be "+typeNames[t])
	}
	return nil
}

func eachObject(v any, p string, keys map[string]jsonType, inner func(map[string]any, string) error) error {
	arr, ok := v.([]any)
	if !ok {
		return nil // absent; a present non-array was refused by onlyKeys
	}
	for i, e := range arr {
		o, ok := e.(map[string]any)
		if !ok {
			return invalid(fmt.Sprintf("%s[%d]", p, i), "must be an object")
		}
		ip := fmt.Sprintf("%s[%d]", p, i)
		if err := onlyKeys(o, ip, keys); err != nil {
			return err
		}
		if inner != nil {
			if err := inner(o, ip); err != nil {
				return err
			}
		}
	}
	return nil
}

// Validate checks every field of the index and returns the first problem as
// an *registry.Error of kind ErrInvalidIndex naming the field.
func (ix *Index) Validate() error {
	if ix.FormatVersion != FormatVersion {
		e := invalid("formatVersion", fmt.Sprintf("unsupported format version %d (this palvella reads %d)", ix.FormatVersion, FormatVersion))
		e.Hint = "upgrade palvella or ask the registry operator which format the registry writes"
		return e
	}
	if !registryNameRe.MatchString(ix.Name) {
		return invalid("name", "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if ix.Version < 1 {
		return invalid("version", "must be a positive integer")
	}
	if err := validTime("expires", ix.Expires); err != nil {
		return err
	}
	if err := validSigs("signatures", ix.Signatures); err != nil {
		return err
	}
	if err := ix.validKeyLifecycle(); err != nil {
		return err
	}
	seenKeys := map[string]bool{}
	for i := range ix.Publishers {
		p := &ix.Publishers[i]
		f := fmt.Sprintf("publishers[%d]", i)
		pub, err := sign.ParsePublicKey(p.PublicKey)
		if err != nil {
			return invalid(f+".publicKey", "must be 64 lowercase hex digits")
		}
		if p.KeyID != sign.KeyID(pub) {
			return invalid(f+".keyId", "must be the key id of publicKey ("+sign.KeyID(pub)+")")
		}
		if seenKeys[p.KeyID] {
			return invalid(f+".keyId", "duplicate publisher key")
		}
		seenKeys[p.KeyID] = true
		if len(p.Plugins) == 0 {
			return invalid(f+".plugins", "must list at least one plugin name pattern")
		}
		for j, pat := range p.Plugins {
			if !patternRe.MatchString(pat) {
				return invalid(fmt.Sprintf("%s.plugins[%d]", f, j), "must be a plugin name pattern of a-z, 0-9, '-', '*' and '?'")
			}
			if _, err := path.Match(pat, ""); err != nil {
				return invalid(fmt.Sprintf("%s.plugins[%d]", f, j), "is not a valid pattern")
			}
		}
		if err := validTime(f+".expires", p.Expires); err != nil {
			return err
		}
		if len(p.Signatures) == 0 {
			return invalid(f+".signatures", "a delegation must be signed by a root key")
		}
		if err := validSigs(f+".signatures", p.Signatures); err != nil {
			return err
		}
	}
	seenPlugins := map[string]bool{}
	for i := range ix.Plugins {
		if err := validPlugin(fmt.Sprintf("plugins[%d]", i), &ix.Plugins[i], seenPlugins); err != nil {
			return err
		}
	}
	return nil
}

// ValidPluginName reports whether s is a valid plugin name: lowercase
// letters and digits separated by single '-', at most 64 characters.
func ValidPluginName(s string) bool {
	return len(s) <= maxPluginNameLen && pluginNameRe.MatchString(s)
}

func validPlugin(f string, p *Plugin, seen map[string]bool) error {
	if len(p.Name) > maxPluginNameLen || !pluginNameRe.MatchString(p.Name) {
		return invalid(f+".name", "must be lowercase letters and digits separated by single '-', at most 64 characters")
	}
	if seen[p.Name] {
		return invalid(f+".name", "duplicate plugin "+p.Name)
	}
	seen[p.Name] = true
	if len(p.Categories) == 0 {
		return invalid(f+".categories", "must list at least one category")
	}
	for j, c := range p.Categories {
		if !slices.Contains(Categories, c) {
			return invalid(fmt.Sprintf("%s.categories[%d]", f, j), "must be one of "+strings.Join(Categories, ", "))
		}
	}
	if len(p.Description) > 1024 {
		return invalid(f+".description", "must be at most 1024 bytes")
	}
	if !licenseRe.MatchString(p.License) {
		return invalid(f+".license", "must be an SPDX license expression such as Apache-2.0")
	}
	if p.Homepage != "" {
		u, err := url.Parse(p.Homepage)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return invalid(f+".homepage", "must be an http or https URL")
		}
	}
	if len(p.Versions) == 0 {
		return invalid(f+".versions", "must list at least one version")
	}
	seenV := map[string]bool{}
	for j := range p.Versions {
		if err := validVersion(fmt.Sprintf("%s.versions[%d]", f, j), &p.Versions[j], seenV); err != nil {
			return err
		}
	}
	return nil
}

func validVersion(f string, v *Version, seen map[string]bool) error {
	sv, err := semver.StrictNewVersion(v.Version)
	if err != nil {
		return invalid(f+".version", "must be a semantic version such as 1.2.3 (no 'v' prefix)")
	}
	if seen[sv.String()] {
		return invalid(f+".version", "duplicate version "+v.Version)
	}
	seen[sv.String()] = true
	if len(v.ProtocolVersions) == 0 {
		return invalid(f+".protocolVersions", "must list at least one protocol version")
	}
	for k, pv := range v.ProtocolVersions {
		if pv < 1 || pv > 1<<20 {
			return invalid(fmt.Sprintf("%s.protocolVersions[%d]", f, k), "must be a positive integer")
		}
		if slices.Index(v.ProtocolVersions, pv) != k {
			return invalid(fmt.Sprintf("%s.protocolVersions[%d]", f, k), "duplicate protocol version")
		}
	}
	if v.Core != "" {
		if _, err := semver.NewConstraint(v.Core); err != nil {
			return invalid(f+".core", "must be a version constraint such as >=0.1.0")
		}
	}
	if v.Yanked != nil && strings.TrimSpace(v.Yanked.Reason) == "" {
		return invalid(f+".yanked.reason", "must say why the version was yanked")
	}
	if len(v.Advisory) > 4096 {
		return invalid(f+".advisory", "must be at most 4096 bytes")
	}
	if len(v.Artifacts) == 0 {
		return invalid(f+".artifacts", "must list at least one artifact")
	}
	seenP := map[string]bool{}
	for k := range v.Artifacts {
		af := fmt.Sprintf("%s.artifacts[%d]", f, k)
		a := &v.Artifacts[k]
		if !platformRe.MatchString(a.OS) {
			return invalid(af+".os", "must be a GOOS value such as linux")
		}
		if !platformRe.MatchString(a.Arch) {
			return invalid(af+".arch", "must be a GOARCH value such as amd64")
		}
		if seenP[a.Platform()] {
			return invalid(af, "duplicate artifact for "+a.Platform())
		}
		seenP[a.Platform()] = true
		if err := ValidURL(a.URL); err != nil {
			return invalid(af+".url", err.Error())
		}
		if a.Size <= 0 {
			return invalid(af+".size", "must be a positive number of bytes")
		}
		if !hex64Re.MatchString(a.SHA256) {
			return invalid(af+".sha256", "must be 64 hex digits")
		}
		switch a.Format {
		case "", FormatBinary:
			if a.Entry != "" {
				return invalid(af+".entry", "only allowed for tar.gz artifacts")
			}
		case FormatTarGz:
			if a.Entry != "" && !SafeRelPath(a.Entry) {
				return invalid(af+".entry", "must be a relative path inside the archive")
			}
		default:
			return invalid(af+".format", `must be "binary" or "tar.gz"`)
		}
		if err := validSigs(af+".signatures", a.Signatures); err != nil {
			return err
		}
	}
	return nil
}

// ValidURL checks an artifact URL: an absolute http(s) URL or a relative
// slash-separated path that stays inside the registry.
func ValidURL(s string) error {
	if s == "" {
		return fmt.Errorf("must not be empty")
	}
	if len(s) > 2048 {
		return fmt.Errorf("must be at most 2048 characters")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("must be a URL or a relative path")
	}
	if u.Scheme != "" {
		if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("must be an http or https URL or a relative path")
		}
		if u.User != nil {
			return fmt.Errorf("must not contain credentials")
		}
		return nil
	}
	if u.Host != "" || u.RawQuery != "" || u.Fragment != "" || !SafeRelPath(s) {
		return fmt.Errorf("a relative url must be a clean path inside the registry (no '..', no leading '/')")
	}
	return nil
}

// SafeRelPath reports whether p is a clean, relative, slash-separated path
// that does not climb out of its base.
func SafeRelPath(p string) bool {
	if p == "" || strings.ContainsAny(p, "\\\x00:") || strings.HasPrefix(p, "/") {
		return false
	}
	if path.Clean(p) != p {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." || seg == "." {
			return false
		}
	}
	return true
}

func validTime(f, s string) error {
	if _, err := time.Parse(time.RFC3339, s); err != nil {
		return invalid(f, "must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
	}
	return nil
}

func validSigs(f string, sigs []Signature) error {
	for i, s := range sigs {
		if !keyIDRe.MatchString(s.KeyID) {
			return invalid(fmt.Sprintf("%s[%d].keyId", f, i), "must be 16 hex digits")
		}
		if !hex128Re.MatchString(s.Sig) {
			return invalid(fmt.Sprintf("%s[%d].sig", f, i), "must be 128 hex digits")
		}
	}
	return nil
}

func (ix *Index) validKeyLifecycle() error {
	if len(ix.RootChain) > 1024 {
		return invalid("rootChain", "must hold at most 1024 root versions")
	}
	for i := range ix.RootChain {
		l := &ix.RootChain[i]
		f := fmt.Sprintf("rootChain[%d]", i)
		if l.Version != int64(i+1) {
			return invalid(f+".version", fmt.Sprintf("must be %d: root versions start at 1 and grow by one", i+1))
		}
		if len(l.Keys) == 0 || len(l.Keys) > 16 {
			return invalid(f+".keys", "must list 1 to 16 root public keys")
		}
		for j, k := range l.Keys {
			if _, err := sign.ParsePublicKey(k); err != nil {
				return invalid(fmt.Sprintf("%s.keys[%d]", f, j), "must be 64 lowercase hex digits")
			}
			if slices.Index(l.Keys, k) != j {
				return invalid(fmt.Sprintf("%s.keys[%d]", f, j), "duplicate key")
			}
		}
		if l.Threshold < 1 || l.Threshold > len(l.Keys) {
			return invalid(f+".threshold", "must be between 1 and the number of keys")
		}
		if len(l.Signatures) == 0 {
			return invalid(f+".signatures", "a root version must be signed")
		}
		if err := validSigs(f+".signatures", l.Signatures); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for i := range ix.Revoked {
		r := &ix.Revoked[i]
		f := fmt.Sprintf("revoked[%d]", i)
		if !keyIDRe.MatchString(r.KeyID) {
			return invalid(f+".keyId", "must be 16 hex digits")
		}
		if seen[r.KeyID] {
			return invalid(f+".keyId", "duplicate revocation")
		}
		seen[r.KeyID] = true
		if !validRevocationReason(r.Reason) {
			return invalid(f+".reason", "must say why the key was revoked (at most 1024 bytes)")
		}
		if err := validTime(f+".revoked", r.Revoked); err != nil {
			return err
		}
		if len(r.Signatures) == 0 {
			return invalid(f+".signatures", "a revocation must be signed by a root key")
		}
		if err := validSigs(f+".signatures", r.Signatures); err != nil {
			return err
		}
	}
	return nil
}
