package spec

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // cron timezones are checked without relying on the system's zoneinfo

	"github.com/robfig/cron/v3"

	"github.com/palvella/palvella/core/expr"
	"github.com/palvella/palvella/core/schema"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// DefaultMinInterval is the shortest interval trigger period when
// Options.MinInterval is zero.
const DefaultMinInterval = time.Minute

// Options are what the validator needs from the server: the types its
// plugins provide and its limits.
//
// The core does not know any action or job type's params: it asks the
// plugin that provides the type, through the JSON Schema of the type's
// params (sdk.TypeInfo.ParamsSchema). An action's params are its fields
// other than name, type, if, env (see [CheckActionParams]), on_success,
// on_failure and timeout; a job's are its with.
type Options struct {
	// ActionType looks up an action type as the pipeline writes it (run,
	// standard/run or action-standard/run). It returns the compiled schema
	// of the type's params (nil when the plugin declares none), or an
	// error saying why the type cannot be used, such as `unknown action
	// type "mtach" (did you mean "match"?)`. Nil accepts every type and
	// checks no params: all a file can be checked for without a server.
	ActionType func(name string) (*schema.Schema, error)
	// JobType is ActionType for the job types of uses (plugin/type).
	JobType func(name string) (*schema.Schema, error)
	// MinInterval is the shortest period of an interval trigger;
	// DefaultMinInterval when zero.
	MinInterval time.Duration
}

var (
	nameRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	typeNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*/[a-z0-9][a-z0-9_-]*$`)
	cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
)

// Validate checks what the schema cannot. It returns an [Errors] with
// every problem, or nil.
func (p *Pipeline) Validate(opts Options) error {
	if opts.MinInterval <= 0 {
		opts.MinInterval = DefaultMinInterval
	}
	v := &validator{errs: &errs{file: p.file, lines: p.lines}, p: p, opts: opts}
	v.validate()
	slices.SortStableFunc(v.errs.list, func(a, b *Error) int { return a.Line - b.Line })
	return v.errs.err()
}

type validator struct {
	errs *errs
	p    *Pipeline
	opts Options
}

func (v *validator) add(path, format string, args ...any) { v.errs.add(path, format, args...) }

func (v *validator) validate() {
	p := v.p
	if p.APIVersion != APIVersion {
		v.add("apiVersion", "must be %s", APIVersion)
	}
	if p.Kind != Kind {
		v.add("kind", "must be %s", Kind)
	}
	v.name("metadata.name", p.Metadata.Name)
	v.name("metadata.namespace", p.Metadata.Namespace)
	s := &p.Spec
	v.duration("spec.timeout", s.Timeout)
	if s.Concurrency < 0 {
		v.add("spec.concurrency", "must not be negative")
	}

	params := v.params()
	jobs := make([]string, 0, len(s.Jobs))
	for _, j := range s.Jobs {
		jobs = append(jobs, j.Name)
	}
	pipelineScope := &expr.Scope{Params: params, Jobs: jobs}
	v.engine("spec.engine", s.Engine, pipelineScope)
	v.env("spec.env", s.Env, pipelineScope)
	v.triggers(params)

	seen := map[string]int{}
	for i := range s.Jobs {
		path := index("spec.jobs", i)
		j := &s.Jobs[i]
		v.unique(path+".name", "job", j.Name, seen, i)
		v.job(path, j, params, jobs)
	}
	v.cycles()
}

// name checks a name of the pipeline's own things.
func (v *validator) name(path, name string) {
	switch {
	case name == "":
		v.add(path, "must not be empty")
	case len(name) > 63:
		v.add(path, "%q is longer than 63 characters", name)
	case !nameRE.MatchString(name):
		v.add(path, "%q is not a valid name (lowercase letters, digits, - and _, starting with a letter or digit)", name)
	}
}

// unique records name at position i and reports a duplicate.
func (v *validator) unique(path, what, name string, seen map[string]int, i int) {
	v.name(path, name)
	if first, dup := seen[name]; dup {
		v.add(path, "duplicate %s name %q (first at index %d)", what, name, first)
		return
	}
	seen[name] = i
}

func (v *validator) duration(path string, d Duration) {
	if d == "" {
		return
	}
	got, err := time.ParseDuration(string(d))
	switch {
	case err != nil:
		v.add(path, "%q is not a duration (such as 90s, 10m or 1h30m)", string(d))
	case got <= 0:
		v.add(path, "%q must be longer than zero", string(d))
	}
}

func (v *validator) params() []string {
	// Not nil: a pipeline without params has none to refer to, and
	// expressions are checked against that.
	names := []string{}
	seen := map[string]int{}
	for i, prm := range v.p.Spec.Params {
		path := index("spec.params", i)
		v.unique(path+".name", "param", prm.Name, seen, i)
		names = append(names, prm.Name)
		if !slices.Contains(paramTypes, prm.Type) {
			v.add(path+".type", "unknown type %q (want one of %s)", prm.Type, strings.Join(paramTypes, ", "))
			continue
		}
		if prm.Required && prm.Default != nil {
			v.add(path+".default", "a required param has no default")
		}
		if prm.Default != nil {
			if err := checkType(prm.Type, prm.Default); err != "" {
				v.add(path+".default", "%s", err)
			}
		}
	}
	return names
}

func (v *validator) triggers(params []string) {
	seen := map[string]int{}
	scope := &expr.Scope{Params: params, Jobs: []string{}, Actions: []string{}, JobParams: []string{}}
	for i, t := range v.p.Spec.Triggers {
		path := index("spec.triggers", i)
		v.unique(path+".name", "trigger", t.Name, seen, i)
		forbid := func(field string, set bool) {
			if set {
				v.add(path+"."+field, "does not apply to a %s trigger", t.Type)
			}
		}
		switch t.Type {
		case TriggerWebhook:
			switch {
			case t.Secret == nil || (t.Secret.Value == "" && t.Secret.FromCredential == ""):
				v.add(path, "a webhook trigger needs a secret: {from_credential: NAME}")
			case t.Secret.FromCredential == "":
				v.add(path+".secret", "%s", literalSecret) // webhooksecret.go
			}
			forbid("every", t.Every != "")
			forbid("expression", t.Expression != "")
			forbid("timezone", t.Timezone != "")
		case TriggerInterval:
			forbid("secret", t.Secret != nil)
			forbid("expression", t.Expression != "")
			forbid("timezone", t.Timezone != "")
			if t.Every == "" {
				v.add(path, "an interval trigger needs every (such as 10m)")
				break
			}
			v.duration(path+".every", t.Every)
			if d := t.Every.Value(); d > 0 && d < v.opts.MinInterval {
				v.add(path+".every", "%s is shorter than the minimum interval %s", d, v.opts.MinInterval)
			}
		case TriggerCron:
			forbid("secret", t.Secret != nil)
			forbid("every", t.Every != "")
			if t.Expression == "" {
				v.add(path, "a cron trigger needs an expression (such as \"0 3 * * *\")")
			} else if _, err := cronParser.Parse(t.Expression); err != nil {
				v.add(path+".expression", "invalid cron expression %q: %v", t.Expression, err)
			}
			if t.Timezone != "" {
				if _, err := time.LoadLocation(t.Timezone); err != nil {
					v.add(path+".timezone", "unknown time zone %q", t.Timezone)
				}
			}
		default:
			v.add(path+".type", "unknown trigger type %q (want webhook, interval or cron)", t.Type)
		}
		for _, k := range sortedKeys(t.Params) {
			kp := key(path+".params", k)
			if !slices.Contains(params, k) {
				v.add(kp, "unknown param %q%s", k, suggestion(k, params))
			}
			v.template(kp, t.Params[k], scope)
		}
	}
}

func (v *validator) job(path string, j *Job, params, jobs []string) {
	scope := &expr.Scope{Params: params, Jobs: jobs, Actions: []string{}, JobParams: sortedKeys(j.Params)}
	for k, r := range j.Requires {
		rp := index(path+".requires", k)
		switch {
		case r == j.Name:
			v.add(rp, "job %q requires itself", r)
		case !slices.Contains(jobs, r):
			v.add(rp, "unknown job %q%s", r, suggestion(r, jobs))
		case slices.Index(j.Requires, r) < k:
			v.add(rp, "job %q is required twice", r)
		}
	}
	if !slices.Contains([]string{WhenSuccess, WhenFailure, WhenAlways}, j.When) {
		v.add(path+".when", "unknown value %q (want success, failure or always)", j.When)
	}
	v.expression(path+".if", j.If, scope)
	v.boolean(path+".if", j.If, scope)
	v.engine(path+".engine", j.Engine, scope)
	v.values(path+".params", j.Params, &expr.Scope{Params: params, Jobs: jobs, Actions: []string{}})
	v.duration(path+".timeout", j.Timeout)
	if j.Retries < 0 {
		v.add(path+".retries", "must not be negative")
	}
	for _, k := range slices.Sorted(maps.Keys(j.RunsOn)) {
		if !labelName.MatchString(k) {
			v.add(path+".runs_on."+k, "a label's name is 1 to 64 lowercase letters, digits, '.', '_', '/' and '-', starting and ending with a letter or digit")
		}
	}
	for _, e := range []struct {
		field   string
		entries []StorageEntry
	}{{"get", j.Storage.Get}, {"put", j.Storage.Put}} {
		for k, se := range e.entries {
			sp := index(path+".storage."+e.field, k)
			if err := checkStoragePath(se.Path); err != "" {
				v.add(sp, "%s", err)
			}
			if se.Scope != ScopeRun && se.Scope != ScopePipeline {
				v.add(sp+".scope", "unknown scope %q (want run or pipeline)", se.Scope)
			}
		}
	}

	switch {
	case j.Uses != "" && len(j.Actions) > 0:
		v.add(path+".uses", "a job has either uses or actions, not both")
	case j.Uses != "":
		if !typeNameRE.MatchString(j.Uses) {
			v.add(path+".uses", "%q is not a job type (want plugin/type, such as terraform/plan)", j.Uses)
		} else if v.opts.JobType != nil {
			if sch, err := v.opts.JobType(j.Uses); err != nil {
				v.add(path+".uses", "%v", err)
			} else if sch != nil {
				with := j.With
				if with == nil {
					with = map[string]any{}
				}
				for _, p := range sch.Check(with, schema.Options{Deferred: schema.Interpolated}) {
					v.add(schema.Join(path+".with", p.Path), "%s", p.Message)
				}
			}
		}
		v.values(path+".with", j.With, scope)
	case len(j.Actions) == 0:
		v.add(path, "a job needs actions or uses")
	default:
		if len(j.With) > 0 {
			v.add(path+".with", "with applies only to a job that uses a job type")
		}
	}

	seen := map[string]int{}
	var before []string
	for k := range j.Actions {
		ap := index(path+".actions", k)
		a := &j.Actions[k]
		v.unique(ap+".name", "action", a.Name, seen, k)
		as := &expr.Scope{Params: params, Jobs: jobs, Actions: slices.Clone(before), JobParams: scope.JobParams}
		v.action(ap, a, as)
		before = append(before, a.Name)
	}
}

func (v *validator) action(path string, a *Action, scope *expr.Scope) {
	var params *schema.Schema
	switch {
	case a.Type == "":
		v.add(path, "an action needs a type, or run for a run action")
	case strings.Contains(a.Type, "/") && !typeNameRE.MatchString(a.Type):
		v.add(path+".type", "%q is not an action type (want plugin/type)", a.Type)
	case !strings.Contains(a.Type, "/") && !nameRE.MatchString(a.Type):
		v.add(path+".type", "%q is not an action type (want a type such as run, or plugin/type)", a.Type)
	case v.opts.ActionType != nil:
		s, err := v.opts.ActionType(a.Type)
		if err != nil {
			v.add(path+".type", "%v", err)
			break
		}
		params = s
	}
	if params != nil {
		v.actionParams(path, a, params, scope)
	}
	v.expression(path+".if", a.If, scope)
	v.boolean(path+".if", a.If, scope)
	v.expression(path+".expr", a.Expr, scope)
	for _, f := range []struct{ name, val string }{{"run", a.Run}, {"shell", a.Shell}, {"input", a.Input},
		{"pattern", a.Pattern}, {"url", a.URL}, {"message", a.Message}} {
		v.template(path+"."+f.name, f.val, scope)
	}
	v.env(path+".env", a.Env, scope)
	v.values(path, a.Params, scope)
	for _, o := range []struct{ name, val string }{{"on_success", a.OnSuccess}, {"on_failure", a.OnFailure}} {
		if !slices.Contains([]string{OutcomeContinue, OutcomeSucceed, OutcomeFail}, o.val) {
			v.add(path+"."+o.name, "unknown outcome %q (want continue, succeed or fail)", o.val)
		}
	}
	v.duration(path+".timeout", a.Timeout)
}

// typedActionFields are the action fields the v1 format types for the
// standard action types; which types read them is for their plugin's
// schema to say.
var typedActionFields = []string{"run", "shell", "input", "pattern", "expr", "url", "message", "format"}

// actionParams checks what the action's plugin will receive against the
// schema of its type. A string holding ${{ ... }} is known only when the
// action runs, where it is checked again (see [CheckActionParams]).
func (v *validator) actionParams(path string, a *Action, s *schema.Schema, scope *expr.Scope) {
	params := a.ActionParams()
	if len(a.Env) > 0 {
		env := map[string]any{}
		for k, e := range a.Env {
			if e.FromCredential == "" {
				env[k] = e.Value
			}
		}
		params["env"] = env
	}
	for _, p := range CheckActionParams(s, params, schema.Options{Deferred: schema.Interpolated}) {
		msg := p.Message
		switch {
		case p.Unknown && slices.Contains(typedActionFields, p.Path):
			msg = fmt.Sprintf("does not apply to a %s action", a.Type)
		case p.Missing != "" && p.Path == "":
			msg = fmt.Sprintf("a %s action needs %s", a.Type, p.Missing)
		}
		v.add(schema.Join(path, p.Path), "%s", msg)
	}
	v.annotated(path, params, s, scope)
}

// CheckActionParams checks an action's params against its type's schema:
// at apply, deferring the strings that hold ${{ ... }}, and again when
// the action runs, once they are interpolated. An action's env belongs to
// the core, which gives it to every action: it is checked only when the
// type's schema declares env.
func CheckActionParams(s *schema.Schema, params map[string]any, opts schema.Options) []schema.Problem {
	if _, has := params["env"]; has && s.Property("env") == nil {
		params = maps.Clone(params)
		delete(params, "env")
	}
	return s.Check(params, opts)
}

// annotated checks the params the type's schema marks for the core: a
// script's ${{ ... }} must be where a reference to a variable can stand,
// and an expression that must be true or false must be able to be.
func (v *validator) annotated(path string, params map[string]any, s *schema.Schema, scope *expr.Scope) {
	shell := ""
	for _, name := range s.Properties() {
		if b, _ := s.Property(name)[sdk.SchemaShell].(bool); b {
			shell = name
		}
	}
	for _, name := range s.Properties() {
		prop := s.Property(name)
		val, _ := params[name].(string)
		if val == "" {
			continue
		}
		if b, _ := prop[sdk.SchemaScript].(bool); b {
			v.script(schema.Key(path, name), val, shellWords(params[shell]))
		}
		if want, _ := prop[sdk.SchemaExpression].(string); want == sdk.ExpressionBoolean {
			v.boolean(schema.Key(path, name), val, scope)
		}
	}
}

// shellWords reads a shell param: a string of words or a list of them.
func shellWords(v any) []string {
	switch t := v.(type) {
	case string:
		return strings.Fields(t)
	case []any:
		var words []string
		for _, e := range t {
			s, _ := e.(string)
			words = append(words, s)
		}
		return words
	}
	return nil
}

// expression checks an expression field.
func (v *validator) expression(path, src string, scope *expr.Scope) {
	if src == "" {
		return
	}
	if err := expr.Compile(src, scope); err != nil {
		v.add(path, "%v", err)
	}
}

// boolean checks that an expression that must be true or false (an if, a
// compare's expr) can be, as far as that shows before it runs.
func (v *validator) boolean(path, src string, scope *expr.Scope) {
	if src == "" || expr.Compile(src, scope) != nil {
		return
	}
	types := map[string]string{}
	for _, p := range v.p.Spec.Params {
		types[p.Name] = p.Type
	}
	if msg := expr.NonBoolean(src, types); msg != "" {
		v.add(path, "%s", msg)
	}
}

// template checks the ${{ ... }} in a string field.
func (v *validator) template(path, s string, scope *expr.Scope) {
	if !expr.HasExpressions(s) {
		return
	}
	if err := expr.CompileTemplate(s, scope); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			v.add(path, "%s", line)
		}
	}
}

// values checks the templates in every string of a map, through nested
// maps and lists.
func (v *validator) values(path string, m map[string]any, scope *expr.Scope) {
	for _, k := range sortedKeys(m) {
		v.value(key(path, k), m[k], scope)
	}
}

func (v *validator) value(path string, val any, scope *expr.Scope) {
	switch x := val.(type) {
	case string:
		v.template(path, x, scope)
	case map[string]any:
		v.values(path, x, scope)
	case []any:
		for i, e := range x {
			v.value(index(path, i), e, scope)
		}
	}
}

// labelName is what a runs_on label's name may be (a worker's --label
// takes the same).
var labelName = regexp.MustCompile(`^[a-z0-9]([a-z0-9._/-]{0,62}[a-z0-9])?$`)

func (v *validator) engine(path string, e *Engine, scope *expr.Scope) {
	if e == nil {
		return
	}
	if e.Type == "" {
		v.add(path, "an engine needs a type")
	}
	v.template(path+".image", e.Image, scope)
	v.values(path, e.Options, scope)
}

func (v *validator) env(path string, env map[string]Value, scope *expr.Scope) {
	for _, k := range sortedKeys(env) {
		if env[k].FromCredential == "" {
			v.template(key(path, k), env[k].Value, scope)
		}
	}
}

// cycles reports every cycle of requires once, naming its jobs.
func (v *validator) cycles() {
	jobs := v.p.Spec.Jobs
	idx := make(map[string]int, len(jobs))
	for i, j := range jobs {
		if _, dup := idx[j.Name]; !dup {
			idx[j.Name] = i
		}
	}
	const (
		unvisited = iota
		active
		done
	)
	state := make([]int, len(jobs))
	var stack []int
	var visit func(i int)
	visit = func(i int) {
		state[i] = active
		stack = append(stack, i)
		for k, r := range jobs[i].Requires {
			d, ok := idx[r]
			if !ok || d == i {
				continue // unknown or self: reported already
			}
			switch state[d] {
			case unvisited:
				visit(d)
			case active:
				start := slices.Index(stack, d)
				names := make([]string, 0, len(stack)-start+1)
				for _, s := range stack[start:] {
					names = append(names, jobs[s].Name)
				}
				names = append(names, jobs[d].Name)
				v.add(index(index("spec.jobs", i)+".requires", k), "requires form a cycle: %s", strings.Join(names, " -> "))
			}
		}
		stack = stack[:len(stack)-1]
		state[i] = done
	}
	for i := range jobs {
		if state[i] == unvisited {
			visit(i)
		}
	}
}

// checkStoragePath rejects paths that would leave the workspace.
func checkStoragePath(p string) string {
	switch {
	case p == "":
		return "empty path"
	case strings.HasPrefix(p, "/"):
		return fmt.Sprintf("%q must be relative to the workspace", p)
	case strings.Contains(p, "\\"):
		return fmt.Sprintf("%q: use / to separate directories", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return fmt.Sprintf("%q leaves the workspace", p)
		}
	}
	return ""
}

func suggestion(name string, candidates []string) string {
	if s := expr.Suggest(name, candidates); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
