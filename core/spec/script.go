package spec

import (
	"strings"

	"github.com/palvella/palvella/core/expr"
)

// script reports, when a pipeline is applied, the ${{ ... }} of a script
// param (one its type's schema marks sdk.SchemaScript, such as run's run)
// that could not reach the script when it runs: at positions where no
// reference to an environment variable can stand (single quotes, quoted
// here-documents...), or in a script of a program other than a POSIX
// shell. The server checks the same when the action runs.
func (v *validator) script(path, script string, shell []string) {
	if !expr.HasExpressions(script) {
		return
	}
	if len(shell) > 0 && !expr.HasExpressions(strings.Join(shell, " ")) {
		if prog, ok := expr.POSIXShell(shell); !ok {
			v.add(path, "${{ }} in a script run by %q, which is not a POSIX shell: give the value in env (env: {NAME: \"${{ ... }}\"}) and read NAME from the environment in the script", prog)
			return
		}
	}
	ctxs, parts, err := expr.ShellContexts(script)
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
		v.add(path, "%v", &expr.ShellError{Expr: strings.TrimSpace(p.Text), Offset: p.Offset, Context: c})
	}
}
