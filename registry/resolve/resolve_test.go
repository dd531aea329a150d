package resolve_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/index"
	"github.com/palvella/palvella/registry/resolve"
)

var sha = strings.Repeat("ab", 32)

func version(v string, protocols ...int) index.Version {
	if len(protocols) == 0 {
		protocols = []int{1}
	}
	return index.Version{Version: v, ProtocolVersions: protocols, Artifacts: []index.Artifact{
		{OS: "linux", Arch: "amd64", URL: "a/" + v, Size: 1, SHA256: sha},
		{OS: "darwin", Arch: "arm64", URL: "b/" + v, Size: 1, SHA256: sha},
	}}
}

func registryOf(name string, plugins ...index.Plugin) resolve.Registry {
	return resolve.Registry{Name: name, Index: &index.Index{FormatVersion: 1, Name: name, Version: 1, Plugins: plugins}}
}

func plugin(name string, versions ...index.Version) index.Plugin {
	return index.Plugin{Name: name, Categories: []string{"engine"}, License: "MIT", Official: true, Versions: versions}
}

var unsigned = resolve.Policy{AllowUnsigned: true}

func req(name, c string) resolve.Request {
	return resolve.Request{Name: name, Constraint: c, OS: "linux", Arch: "amd64", Protocols: []int{1}}
}

func TestConstraints(t *testing.T) {
	regs := []resolve.Registry{registryOf("r", plugin("engine-x",
		version("1.0.0"), version("1.0.1"), version("1.1.0"), version("2.0.0-rc.1"), version("0.9.0"), version("1.2.0-beta.1")))}
	for c, want := range map[string]string{
		"~1.0":         "1.0.1",
		"^1":           "1.1.0",
		"^1.0":         "1.1.0",
		"~1.1":         "1.1.0",
		"1.0.0":        "1.0.0",
		"=1.0.1":       "1.0.1",
		">=1.0 <2.0":   "1.1.0",
		">=2.0.0-rc.0": "2.0.0-rc.1",
		"^1.2.0-beta":  "1.2.0-beta.1",
		"":             "1.1.0",
		"*":            "1.1.0",
		"<1":           "0.9.0",
		"1.0.x":        "1.0.1",
	} {
		sel, err := resolve.Resolve(regs, req("engine-x", c), unsigned, time.Now())
		if err != nil {
			t.Errorf("%q: %v", c, err)
			continue
		}
		if sel.Version.Version != want || sel.Registry != "r" || sel.Artifact.OS != "linux" {
			t.Errorf("%q = %s, want %s", c, sel.Version.Version, want)
		}
	}
	for c, kind := range map[string]error{
		"^3":       registry.ErrNotFound,
		"1.0.7":    registry.ErrNotFound,
		"not-a-cs": registry.ErrInvalidArgument,
	} {
		if _, err := resolve.Resolve(regs, req("engine-x", c), unsigned, time.Now()); !errors.Is(err, kind) {
			t.Errorf("%q: got %v, want %v", c, err, kind)
		}
	}
	if _, err := resolve.Resolve(regs, req("engine-nope", "*"), unsigned, time.Now()); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("unknown plugin: %v", err)
	}
}

func TestSkipsIncompatibleAndSaysWhy(t *testing.T) {
	v2 := version("1.2.0", 2)
	v3 := version("1.3.0")
	v3.Artifacts = v3.Artifacts[1:] // darwin only
	v4 := version("1.4.0")
	v4.Core = ">=9.0.0"
	regs := []resolve.Registry{registryOf("r", plugin("engine-x", version("1.1.0"), v2, v3, v4))}
	r := req("engine-x", "^1")
	r.CoreVersion = "0.1.0"
	sel, err := resolve.Resolve(regs, r, unsigned, time.Now())
	if err != nil || sel.Version.Version != "1.1.0" {
		t.Fatalf("got %v, %v; want 1.1.0", sel, err)
	}
	r.Constraint = ">=1.2"
	_, err = resolve.Resolve(regs, r, unsigned, time.Now())
	if !errors.Is(err, registry.ErrIncompatible) {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{"1.4.0: requires core >=9.0.0", "1.3.0: no artifact for linux/amd64", "1.2.0: speaks plugin protocol 2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestUnsignedRefusedByDefault(t *testing.T) {
	regs := []resolve.Registry{registryOf("r", plugin("engine-x", version("1.0.0")))}
	if _, err := resolve.Resolve(regs, req("engine-x", "*"), resolve.Policy{}, time.Now()); !errors.Is(err, registry.ErrSignature) {
		t.Errorf("unsigned accepted by the zero policy: %v", err)
	}
}

func TestOwnerRegistryAnswersEvenWhenNothingFits(t *testing.T) {
	private := registryOf("private", plugin("engine-x", version("1.0.0", 2)))
	private.Names = []string{"engine-x"}
	regs := []resolve.Registry{private,
		registryOf("public", plugin("engine-x", version("1.5.0")), plugin("engine-y", version("3.0.0"))),
	}
	// private owns engine-x but has nothing compatible: public must not answer.
	if _, err := resolve.Resolve(regs, req("engine-x", "*"), unsigned, time.Now()); !errors.Is(err, registry.ErrIncompatible) {
		t.Errorf("fell through to another registry: %v", err)
	}
	sel, err := resolve.Resolve(regs, req("engine-y", "*"), unsigned, time.Now())
	if err != nil || sel.Registry != "public" {
		t.Errorf("engine-y: %v %v", sel, err)
	}
}

func TestNamesHaveOwners(t *testing.T) {
	firstParty := func(name string, plugins ...index.Plugin) resolve.Registry {
		r := registryOf(name, plugins...)
		r.FirstParty = true
		return r
	}
	owned := func(name string, names []string, plugins ...index.Plugin) resolve.Registry {
		r := registryOf(name, plugins...)
		r.Names = names
		return r
	}
	official := plugin("engine-docker", version("1.0.0"))
	official.Official = true
	fakeOfficial := plugin("engine-docker", version("9.0.0"))
	fakeOfficial.Official = true
	for _, tc := range []struct {
		name     string
		regs     []resolve.Registry
		req      resolve.Request
		want     string // registry, or "" for an error
		wantKind error
	}{
		{"a builtin name is the first-party root's, whatever the order",
			[]resolve.Registry{registryOf("other", plugin("authentication-token", version("9.0.0"))), firstParty("public", plugin("authentication-token", version("0.1.0")))},
			resolve.Request{Name: "authentication-token", Builtins: []string{"authentication-token"}}, "public", nil},
		{"a builtin name from another root is refused even when chosen",
			[]resolve.Registry{registryOf("other", plugin("authentication-token", version("9.0.0"))), firstParty("public")},
			resolve.Request{Name: "authentication-token", Builtins: []string{"authentication-token"}, Registry: "other"}, "", registry.ErrNotOwner},
		{"a builtin name listed only by another root says why",
			[]resolve.Registry{registryOf("other", plugin("authentication-token", version("9.0.0")))},
			resolve.Request{Name: "authentication-token", Builtins: []string{"authentication-token"}}, "", registry.ErrNotOwner},
		{"an official plugin of the first-party registry is a first-party name",
			[]resolve.Registry{registryOf("other", fakeOfficial), firstParty("public", official)},
			resolve.Request{Name: "engine-docker"}, "public", nil},
		{"a registry added for names owns them against open registries",
			[]resolve.Registry{registryOf("public", plugin("acme-deploy", version("5.0.0"))), owned("acme", []string{"acme-*"}, plugin("acme-deploy", version("1.0.0")))},
			resolve.Request{Name: "acme-deploy"}, "acme", nil},
		{"a registry added for names serves no other",
			[]resolve.Registry{owned("acme", []string{"acme-*"}, plugin("engine-x", version("1.0.0")))},
			resolve.Request{Name: "engine-x"}, "", registry.ErrNotOwner},
		{"two open registries listing a name need a choice",
			[]resolve.Registry{registryOf("a", plugin("engine-x", version("1.0.0"))), registryOf("b", plugin("engine-x", version("2.0.0")))},
			resolve.Request{Name: "engine-x"}, "", registry.ErrAmbiguous},
		{"the choice settles it",
			[]resolve.Registry{registryOf("a", plugin("engine-x", version("1.0.0"))), registryOf("b", plugin("engine-x", version("2.0.0")))},
			resolve.Request{Name: "engine-x", Registry: "a"}, "a", nil},
		{"the lock's registry breaks the tie",
			[]resolve.Registry{registryOf("a", plugin("engine-x", version("1.0.0"))), registryOf("b", plugin("engine-x", version("2.0.0")))},
			resolve.Request{Name: "engine-x", Prefer: "b"}, "b", nil},
		{"a registry not read still owns its names",
			[]resolve.Registry{{Name: "acme", Names: []string{"acme-*"}}, registryOf("public", plugin("acme-deploy", version("5.0.0")))},
			resolve.Request{Name: "acme-deploy"}, "", registry.ErrNotOwner},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Constraint = "*"
			sel, err := resolve.Resolve(tc.regs, tc.req, unsigned, time.Now())
			if tc.want != "" {
				if err != nil || sel.Registry != tc.want {
					t.Fatalf("got %v, %v; want %s", sel, err, tc.want)
				}
				return
			}
			if !errors.Is(err, tc.wantKind) {
				t.Fatalf("got %v, %v; want %v", sel, err, tc.wantKind)
			}
		})
	}
}

func TestOfficialComesFromTheRootNotTheFlag(t *testing.T) {
	p := plugin("engine-x", version("1.0.0"))
	p.Official = true
	other := registryOf("other", p)
	if _, err := resolve.Resolve([]resolve.Registry{other}, req("engine-x", "*"), resolve.Policy{AllowUnsigned: true, OfficialOnly: true}, time.Now()); !errors.Is(err, registry.ErrPolicy) {
		t.Errorf("a publisher's official flag passed officialOnly: %v", err)
	}
	other.FirstParty = true
	if _, err := resolve.Resolve([]resolve.Registry{other}, req("engine-x", "*"), resolve.Policy{AllowUnsigned: true, OfficialOnly: true}, time.Now()); err != nil {
		t.Errorf("official plugin of the first-party root refused: %v", err)
	}
}

func FuzzResolve(f *testing.F) {
	f.Add("^1.2", "1.2.3,1.3.0,2.0.0,1.2.4-rc.1")
	f.Add(">=1.0 <2.0", "0.1.0,1.0.0,1.9.9,2.0.0")
	f.Add("~0.0", "0.0.1,0.1.0")
	f.Add(">=2.0.0-rc.0", "2.0.0-rc.1,1.0.0")
	f.Add("1.0.0 || 2.x", "1.0.0,2.3.4")
	f.Fuzz(func(t *testing.T, constraint, versions string) {
		var vs []index.Version
		seen := map[string]bool{}
		for _, s := range strings.Split(versions, ",") {
			v, err := semver.StrictNewVersion(s)
			if err != nil || seen[v.String()] || len(vs) > 50 {
				continue
			}
			seen[v.String()] = true
			vs = append(vs, version(s))
		}
		if len(vs) == 0 {
			return
		}
		regs := []resolve.Registry{registryOf("r", plugin("engine-x", vs...))}
		sel, err := resolve.Resolve(regs, req("engine-x", constraint), unsigned, time.Now())
		c, _, cerr := resolve.ParseConstraint(constraint)
		if cerr != nil {
			if !errors.Is(err, registry.ErrInvalidArgument) {
				t.Fatalf("bad constraint %q gave %v", constraint, err)
			}
			return
		}
		// The answer is the highest version the constraint accepts.
		var best *semver.Version
		for _, v := range vs {
			sv := semver.MustParse(v.Version)
			if c.Check(sv) && (best == nil || sv.GreaterThan(best)) {
				best = sv
			}
		}
		if best == nil {
			if !errors.Is(err, registry.ErrNotFound) {
				t.Fatalf("%q over %s: nothing matches but got %v, %v", constraint, versions, sel, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q over %s: %v", constraint, versions, err)
		}
		if got := semver.MustParse(sel.Version.Version); !got.Equal(best) {
			t.Fatalf("%q over %s = %s, want %s", constraint, versions, got, best)
		}
		if !strings.Contains(constraint, "-") && best.Prerelease() != "" {
			t.Fatalf("%q picked prerelease %s without naming one", constraint, best)
		}
	})
}

func BenchmarkResolve10000x20(b *testing.B) {
	plugins := make([]index.Plugin, 10000)
	for i := range plugins {
		vs := make([]index.Version, 20)
		for j := range vs {
			vs[j] = version(fmt.Sprintf("%d.%d.%d", j/10, j%10, i%3))
		}
		plugins[i] = plugin(fmt.Sprintf("engine-p%05d", i), vs...)
	}
	// Build through Parse so the name lookup is what a real client uses.
	ix := &index.Index{FormatVersion: 1, Name: "bench", Version: 1, Expires: "2100-01-01T00:00:00Z", Publishers: []index.Publisher{}, Plugins: plugins}
	data, err := ix.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	parsed, err := index.Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	regs := []resolve.Registry{{Name: "bench", Index: parsed}}
	now := time.Now()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		name := fmt.Sprintf("engine-p%05d", i%10000)
		i++
		if _, err := resolve.Resolve(regs, req(name, "^1.2"), unsigned, now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(data))/(1<<20), "index-MiB")
}
