package sdk

// Annotations a type's ParamsSchema (in [TypeInfo]) may carry for the
// core.
//
// A param whose property says "x-palvella-script": true holds a POSIX
// shell script. The core never pastes the value of a `${{ ... }}` into such
// a script's text: it evaluates each one into an environment variable
// (PALVELLA_EXPR_1, ...), adds it to the object param named by
// "x-palvella-env" at the top of the schema ("env" when absent), and
// writes a reference to the variable where the expression stood. So a
// param or a webhook payload holding `"; rm -rf ~; "` reaches the script
// as data. A property marked "x-palvella-shell": true names the program
// that runs the scripts (a word, or a list of words); when it names
// something other than a POSIX shell (sh, bash, dash, ash, ksh, zsh,
// mksh, busybox), a `${{ ... }}` in a script is refused, since the core
// cannot know how that language refers to a variable.
//
// A property marked "x-palvella-expression": "boolean" holds an
// expression the plugin evaluates to true or false (as the standard
// compare action's expr): the core checks at `pipeline apply` that it
// names only what exists and can be true or false.
//
// The core checks every action's params and every job's with against the
// type's ParamsSchema, at `pipeline apply` and again when the action or
// job runs, after interpolation; see the package documentation.
const (
	SchemaScript     = "x-palvella-script"
	SchemaEnv        = "x-palvella-env"
	SchemaShell      = "x-palvella-shell"
	SchemaExpression = "x-palvella-expression"
	// SchemaPipeline, true on a property of an engine type's params,
	// lets a pipeline set it in an inline engine (`engine: {type: T, ...}`).
	// The core refuses at apply, and again when the job runs, every inline
	// parameter without it: parameters that reach beyond the job (host
	// paths, the daemon, the host's network, logins) are set by the
	// server's administrator in a named engine.
	SchemaPipeline = "x-palvella-pipeline"
)

// ExpressionBoolean is the value of SchemaExpression for an expression
// that must be true or false.
const ExpressionBoolean = "boolean"
