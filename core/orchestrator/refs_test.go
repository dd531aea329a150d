package orchestrator

import (
	"fmt"
	"testing"
)

func TestRefsOfNamesTheJobsExpressionsUse(t *testing.T) {
	cases := []struct {
		in   any
		all  bool
		want string
	}{
		{in: `echo hello`, want: "map[]"},
		{in: `${{ jobs.build.outputs.version }}`, want: "map[build:true]"},
		{in: `jobs["my-job"].status == 'success' && jobs.b?.status`, want: "map[b:true my-job:true]"},
		{in: map[string]any{"x": []any{"${{ jobs.a.status }}", "${{ jobs.c.outputs.k }}"}}, want: "map[a:true c:true]"},
		{in: `len(jobs) > 2`, all: true},
		{in: `all(values(jobs), .status == 'success')`, all: true},
		{in: `myjobs.x and params.jobs`, want: "map[]"},
	}
	for _, c := range cases {
		r := refsOf(c.in)
		if r.all != c.all || (!c.all && fmt.Sprint(r.names) != c.want) {
			t.Errorf("refsOf(%v) = all %v %v, want all %v %s", c.in, r.all, r.names, c.all, c.want)
		}
	}
}
