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

func TestFirstRegistryOwnsTheName(t *testing.T) {
	regs := []resolve.Registry{
		registryOf("private", plugin("engine-x", version("1.0.0", 2))),
		registryOf("public", plugin("engine-x", version("1.5.0")), plugin("engine-y", version("3.0.0"))),
	}
	// private lists engine-x but nothing compatible: public must not answer.
	if _, err := resolve.Resolve(regs, req("engine-x", "*"), unsigned, time.Now()); !errors.Is(err, registry.ErrIncompatible) {
		t.Errorf("fell through to the next registry: %v", err)
	}
	sel, err := resolve.Resolve(regs, req("engine-y", "*"), unsigned, time.Now())
	if err != nil || sel.Registry != "public" {
		t.Errorf("engine-y: %v %v", sel, err)
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
