package rbac

import "strings"

// Match reports whether resource matches pattern. In a pattern, "*"
// matches any run of characters, including none and including ":" and
// "/"; every other character matches itself. So "pipeline:default/*"
// matches every pipeline of the namespace default, "credential:ci-*" every
// credential whose name starts with "ci-", and "*" everything.
func Match(pattern, resource string) bool {
	p, r := 0, 0
	star, starR := -1, 0
	for r < len(resource) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, starR = p, r
			p++
		case p < len(pattern) && pattern[p] == resource[r]:
			p++
			r++
		case star >= 0:
			// Let the last star swallow one more character and retry.
			starR++
			p, r = star+1, starR
		default:
			return false
		}
	}
	return strings.TrimLeft(pattern[p:], "*") == ""
}

// matchMethod reports whether a permission's method covers method.
func matchMethod(allowed, method string) bool {
	return allowed == "*" || allowed == method
}

// resourceNamespace returns the namespace a resource belongs to: the first
// segment of the name of "kind:namespace/name..." resources, and the name
// of "namespace:name". Resources such as "credential:ci-key" belong to
// none.
func resourceNamespace(resource string) (string, bool) {
	kind, name, ok := strings.Cut(resource, ":")
	if !ok {
		return "", false
	}
	if kind == "namespace" {
		return name, true
	}
	ns, _, ok := strings.Cut(name, "/")
	return ns, ok
}
