package spec

import "sort"

// CredentialRef is a place where a pipeline names a credential
// ({from_credential: NAME}).
type CredentialRef struct {
	// Path is the field path, such as spec.env.DB_PASSWORD or
	// spec.jobs[0].actions[1].env.TOKEN.
	Path string
	// Line is the line of the field in the file, 0 when unknown.
	Line int
	// Name is the credential's name.
	Name string
}

// CredentialRefs lists every credential the pipeline names, in the order
// of the fields: spec.env, the env of every action, and the secrets of
// webhook triggers.
func (p *Pipeline) CredentialRefs() []CredentialRef {
	var out []CredentialRef
	add := func(path, name string) {
		if name != "" {
			out = append(out, CredentialRef{Path: path, Line: lineOf(p.lines, path), Name: name})
		}
	}
	env := func(path string, m map[string]Value) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			add(key(path, k), m[k].FromCredential)
		}
	}
	env("spec.env", p.Spec.Env)
	for i, t := range p.Spec.Triggers {
		if t.Secret != nil {
			add(index("spec.triggers", i)+".secret", t.Secret.FromCredential)
		}
	}
	for i, j := range p.Spec.Jobs {
		for k, a := range j.Actions {
			env(index(index("spec.jobs", i)+".actions", k)+".env", a.Env)
		}
	}
	return out
}

// File returns the name the pipeline was parsed under.
func (p *Pipeline) File() string { return p.file }
