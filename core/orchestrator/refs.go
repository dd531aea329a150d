package orchestrator

import (
	"regexp"
	"strings"
)

// jobRefs are the jobs that expressions name. The expression context
// given to a job's `if`, or to an action (its `if`, its interpolated
// params, and the plugin that runs it), holds the status and outputs of
// those jobs only, so that its size, and the work of building and sending
// it, does not grow with the run. An expression that uses `jobs` in any
// other way than jobs.NAME or jobs["NAME"] gets every job.
type jobRefs struct {
	all   bool
	names map[string]bool
}

// jobRefRE finds a use of `jobs` and the name it selects, if any.
var jobRefRE = regexp.MustCompile(`(^|[^A-Za-z0-9_.$])jobs\b(\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*["']([^"']*)["']\s*\]|\?\.([A-Za-z_][A-Za-z0-9_]*))?`)

// refsOf returns the jobs named in the strings of values (strings, maps
// and lists of them, as in action params).
func refsOf(values ...any) *jobRefs {
	r := &jobRefs{names: map[string]bool{}}
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case string:
			r.scan(t)
		case map[string]any:
			for _, e := range t {
				walk(e)
			}
		case []any:
			for _, e := range t {
				walk(e)
			}
		}
	}
	for _, v := range values {
		walk(v)
	}
	return r
}

func (r *jobRefs) scan(s string) {
	if r.all || !strings.Contains(s, "jobs") {
		return
	}
	for _, m := range jobRefRE.FindAllStringSubmatch(s, -1) {
		switch {
		case m[3] != "":
			r.names[m[3]] = true
		case m[4] != "":
			r.names[m[4]] = true
		case m[5] != "":
			r.names[m[5]] = true
		default:
			r.all = true
			return
		}
	}
}

// has reports whether the context should hold job name.
func (r *jobRefs) has(name string) bool { return r == nil || r.all || r.names[name] }
