package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/palvella/palvella/core/pluginhost"
	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"github.com/palvella/palvella/plugin-sdk/credential"
	"github.com/palvella/palvella/plugin-sdk/engine"
)

// Credentials in a job's environment
//
// A pipeline names credentials, never values: `{from_credential: NAME}` in
// spec.env or in an action's env. The value is read from the credential
// plugin when the job starts on an engine (jobEnv), handed to the engine in
// the job's environment and nowhere else, and every value a job holds is
// masked in the log lines of its actions (maskerFor) for as long as the job
// runs. A credential named in an action's env is given to the commands of
// that action's job.
//
// A job whose params say `palvella_token: true` also gets
// PALVELLA_API_TOKEN: a token of the authentication plugin that may read
// and write its own run only, revoked when the job ends (and expiring with
// the job's timeout in any case).

// RunTokenParam is the job param that asks for a per-run API token.
const RunTokenParam = "palvella_token"

// RunTokenEnv is the variable a per-run token is given in.
const RunTokenEnv = "PALVELLA_API_TOKEN"

// RunTokenOwner returns the owner of the per-run tokens of a run: the
// run's authorization resource, "run:<namespace>/<pipeline>/<number>".
// The server lets such identities reach that resource only.
func RunTokenOwner(namespace, pipeline string, number int64) string {
	return fmt.Sprintf("run:%s/%s/%d", namespace, pipeline, number)
}

// RunTokenRoles are the roles a per-run token carries, within its run.
var RunTokenRoles = []string{"developer"}

// actionEnvKey is how planspec records `{from_credential}` in an action's
// env: in plan.Env under a key no variable name can have, so that jobEnv
// gives it to that job only.
func actionEnvKey(job, action, name string) string { return job + "/" + action + "/" + name }

// minMasked is the shortest text masked: shorter fragments (of a secret's
// lines) would hide ordinary output everywhere.
const minMasked = 3

// mask replaces secret values in log text.
const mask = "***"

// jobSecrets holds the secret values of the jobs running in this process,
// by orchestrator and job.
var jobSecrets sync.Map // secretKey -> *secretSet

type secretKey struct {
	o   *Orchestrator
	job string // namespace/run/job
}

type secretSet struct{ values []string }

func jobKey(namespace, run, job string) string { return namespace + "/" + run + "/" + job }

// jobEnv is the environment of a job's commands. Credentials are read now,
// at execution time, and their values registered for masking until ctx
// (the job's) ends.
func (o *Orchestrator) jobEnv(ctx context.Context, run *resource.Run, p *plan, pj *planJob, ws *engine.Workspace) (map[string]string, error) {
	var (
		env     map[string]string
		secrets []string
		err     error
	)
	if o.remote != nil {
		// The server reads the credentials for the job it leased to this
		// worker, and issues its run token.
		env, secrets, err = o.remote.jobEnv(ctx, run, pj.Name, ws.Workdir)
	} else {
		env, secrets, err = o.jobEnvValues(ctx, run, p, pj, ws.Workdir)
	}
	if err != nil {
		return nil, err
	}
	if len(secrets) > 0 {
		o.holdSecrets(ctx, jobKey(run.Namespace, run.Name, pj.Name), secrets)
	}
	return env, nil
}

// jobEnvValues is a job's environment and the secret values in it: its
// credentials, read now, and its run token, revoked when ctx ends.
func (o *Orchestrator) jobEnvValues(ctx context.Context, run *resource.Run, p *plan, pj *planJob, workdir string) (map[string]string, []string, error) {
	env := map[string]string{}
	var secrets []string
	keys := make([]string, 0, len(p.Env))
	for k := range p.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var creds credential.Credential
	for _, k := range keys {
		v := p.Env[k]
		name, field := k, "spec.env."+k
		if job, rest, scoped := strings.Cut(k, "/"); scoped {
			action, variable, _ := strings.Cut(rest, "/")
			if job != pj.Name {
				continue
			}
			name, field = variable, "jobs."+job+".actions."+action+".env."+variable
		}
		if v.FromCredential == "" {
			env[name] = v.Value
			continue
		}
		if creds == nil {
			c, err := o.credentialClient(ctx)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: credential %q: %w", field, v.FromCredential, err)
			}
			creds = credentialsFor(c, run) // refuses what the pipeline may not use (credaccess.go)
		}
		val, err := CredentialValue(ctx, creds, v.FromCredential)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", field, err)
		}
		env[name] = val
		secrets = append(secrets, val)
	}
	env["PALVELLA_RUN"] = run.Name
	env["PALVELLA_RUN_NUMBER"] = strconv.FormatInt(run.Number, 10)
	env["PALVELLA_PIPELINE"] = run.Pipeline
	env["PALVELLA_NAMESPACE"] = run.Namespace
	env["PALVELLA_JOB"] = pj.Name
	env["PALVELLA_WORKSPACE"] = workdir
	if wantsToken(pj.Params) {
		tok, err := o.runToken(ctx, run)
		if err != nil {
			return nil, nil, fmt.Errorf("params.%s: %w", RunTokenParam, err)
		}
		env[RunTokenEnv] = tok
		secrets = append(secrets, tok)
	}
	return env, secrets, nil
}

// wantsToken reports whether a job's params ask for a per-run token.
func wantsToken(params map[string]any) bool {
	switch v := params[RunTokenParam].(type) {
	case bool:
		return v
	case string:
		b, _ := strconv.ParseBool(v)
		return b
	}
	return false
}

// CredentialValue reads the value of a credential: its "value" key, or its
// only key. Errors name the credential, never a value.
func CredentialValue(ctx context.Context, c credential.Credential, name string) (string, error) {
	sec, err := c.Get(ctx, name)
	if err != nil {
		if errors.Is(err, sdk.ErrNotFound) {
			return "", sdk.Errorf(sdk.ErrFailedPrecondition, "from_credential", "credential %q does not exist (set it with `palvella credential set %s`)", name, name)
		}
		return "", fmt.Errorf("read credential %q: %w", name, err)
	}
	if v, ok := sec.Data["value"]; ok {
		return string(v), nil
	}
	if len(sec.Data) == 1 {
		for _, v := range sec.Data {
			return string(v), nil
		}
	}
	keys := make([]string, 0, len(sec.Data))
	for k := range sec.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return "", sdk.Errorf(sdk.ErrFailedPrecondition, "from_credential", "credential %q has no key \"value\" and several keys (%s): env takes one value", name, strings.Join(keys, ", "))
}

// credentialClient returns the credential plugin.
func (o *Orchestrator) credentialClient(ctx context.Context) (credential.Credential, error) {
	name := o.opts.Credential
	if name == "" {
		return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "", "this server runs no credential plugin")
	}
	p, err := o.plugin(name)
	if err != nil {
		return nil, err
	}
	return pluginhost.Client[credential.Credential](ctx, p, sdk.CategoryCredential)
}

// runToken issues a per-run token that is revoked when ctx (the job's)
// ends.
func (o *Orchestrator) runToken(ctx context.Context, run *resource.Run) (string, error) {
	if o.opts.Authentication == "" {
		return "", sdk.Errorf(sdk.ErrFailedPrecondition, "", "this server runs no authentication plugin to issue a run token")
	}
	p, err := o.plugin(o.opts.Authentication)
	if err != nil {
		return "", fmt.Errorf("issue a run token: %w", err)
	}
	c, err := pluginhost.Client[authentication.Authentication](ctx, p, sdk.CategoryAuthentication)
	if err != nil {
		return "", fmt.Errorf("issue a run token: %w", err)
	}
	issuer, ok := c.(authentication.TokenIssuer)
	if !ok {
		return "", sdk.Errorf(sdk.ErrUnimplemented, "", "%s does not issue tokens", o.opts.Authentication)
	}
	expires := 24 * time.Hour
	if d, ok := ctx.Deadline(); ok {
		expires = time.Until(d) + time.Minute
	}
	created, err := issuer.CreateToken(ctx, &authentication.CreateTokenRequest{
		Owner:       RunTokenOwner(run.Namespace, run.Pipeline, run.Number),
		Description: "per-run token of " + run.Namespace + "/" + run.Name,
		Roles:       slices.Clone(RunTokenRoles),
		Namespaces:  []string{run.Namespace},
		ExpiresIn:   expires,
	})
	if err != nil {
		return "", fmt.Errorf("issue a run token: %w", err)
	}
	id := created.Meta.ID
	context.AfterFunc(ctx, func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, err := issuer.RevokeToken(rctx, id); err != nil {
			o.log.Error("revoke a run token", "run", run.Name, "token", id, "error", err)
		}
	})
	return created.Token, nil
}

// holdSecrets registers values to mask in the logs of a job until ctx
// ends.
func (o *Orchestrator) holdSecrets(ctx context.Context, job string, values []string) {
	k := secretKey{o: o, job: job}
	set := &secretSet{values: maskList(values)}
	jobSecrets.Store(k, set)
	context.AfterFunc(ctx, func() { jobSecrets.CompareAndDelete(k, set) })
}

// maskList returns the texts to mask for secret values: each value, and
// each line of a value of several lines (a log line never holds more than
// one), longest first so that a longer secret is masked whole.
func maskList(values []string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		s = strings.TrimRight(s, "\r")
		if len(s) >= minMasked && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, v := range values {
		add(v)
		// A message that quotes a value (%q, JSON) escapes its quotes,
		// backslashes and control characters: mask those forms too.
		if q := strconv.Quote(v); q[1:len(q)-1] != v {
			add(q[1 : len(q)-1])
		}
		if j, err := json.Marshal(v); err == nil && string(j[1:len(j)-1]) != v {
			add(string(j[1 : len(j)-1]))
		}
		if strings.ContainsAny(v, "\r\n") {
			for _, line := range strings.Split(strings.ReplaceAll(v, "\r\n", "\n"), "\n") {
				add(strings.TrimSpace(line))
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// masker returns a function that replaces every value of values in a
// text.
func masker(values []string) func(string) string {
	if len(values) == 0 {
		return func(s string) string { return s }
	}
	pairs := make([]string, 0, 2*len(values))
	for _, v := range values {
		pairs = append(pairs, v, mask)
	}
	r := strings.NewReplacer(pairs...)
	return r.Replace
}

// maskerFor returns the function that masks secret values in the log lines
// of an execution's actions: the values of the credentials and the token
// its job holds.
func (o *Orchestrator) maskerFor(ref sdk.ExecutionRef) func(string) string {
	v, ok := jobSecrets.Load(secretKey{o: o, job: jobKey(ref.Namespace, ref.Run, ref.Job)})
	if !ok {
		return func(s string) string { return s }
	}
	return masker(v.(*secretSet).values)
}

// MaskResult masks the secret values of an execution's job in what an
// action returned, before it is recorded: its message, and its outputs'
// values and keys, through nested maps and lists. A script can name an
// output after a secret (`echo "$TOKEN=x" >> $PALVELLA_OUTPUT`) as easily
// as it can give one a secret value.
func (o *Orchestrator) MaskResult(ref sdk.ExecutionRef, message string, outputs map[string]any) (string, map[string]any) {
	m := o.maskerFor(ref)
	out, _ := maskAny(m, outputs).(map[string]any)
	return m(message), out
}

func maskAny(m func(string) string, v any) any {
	switch t := v.(type) {
	case string:
		return m(t)
	case map[string]any:
		if t == nil {
			return t
		}
		return maskMap(m, t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = maskAny(m, e)
		}
		return out
	}
	return v
}

// maskMap masks a map's keys and values. Keys that masking leaves alone
// keep their names; a masked key that meets another takes a suffix
// ("***", "***_2"...), so that no value is lost or overwritten.
func maskMap(m func(string) string, t map[string]any) map[string]any {
	out := make(map[string]any, len(t))
	var masked []string
	for k, e := range t {
		if mk := m(k); mk != k {
			masked = append(masked, k)
			continue
		}
		out[k] = maskAny(m, e)
	}
	sort.Strings(masked) // the same outputs get the same names
	for _, k := range masked {
		mk := m(k)
		name := mk
		for n := 2; ; n++ {
			if _, taken := out[name]; !taken {
				break
			}
			name = mk + "_" + strconv.Itoa(n)
		}
		out[name] = maskAny(m, t[k])
	}
	return out
}
