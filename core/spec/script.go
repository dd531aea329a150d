package spec

import (
	"strings"

	"github.com/palvella/palvella/core/expr"
)

// script reports, when a pipeline is applied, the ${{ ... }} of a run
// action's script that could not reach it when it runs: at positions where
// no reference to an environment variable can stand (single quotes, quoted
// here-documents...), or in a script of a program other than a POSIX shell.
// The server checks the same when the action runs, for every action type
// that marks a param as a script; this reports it earlier for run.
func (v *validator) script(path string, a *Action) {
	if !expr.HasExpressions(a.Run) {
		return
	}
	if !expr.HasExpressions(a.Shell) {
		if prog, ok := expr.POSIXShell(strings.Fields(a.Shell)); !ok {
			v.add(path+".run", "${{ }} in a script run by %q, which is not a POSIX shell: give the value in env (env: {NAME: \"${{ ... }}\"}) and read NAME from the environment in the script", prog)
			return
		}
	}
	ctxs, parts, err := expr.ShellContexts(a.Run)
	if err != nil {
		return // reported with the template's other errors
	}
	k := 0
	for _, p := range parts {
		if !p.Expr {
			continue
		}
		c := ctxs[k]
		k++
		if _, ok := c.Reference("V"); ok {
			continue
		}
		v.add(path+".run", "%v", &expr.ShellError{Expr: strings.TrimSpace(p.Text), Offset: p.Offset, Context: c})
	}
}
