package expr

import (
	"fmt"
	"strings"
)

// Scripts
//
// A `${{ ... }}` inside a shell script must never become shell syntax:
// pasting a value such as `"; rm -rf ~; "` into the script's text would run
// it. [InterpolateShell] therefore leaves the values out of the text: each
// expression is evaluated into an environment variable, and the script
// refers to that variable where the expression stood, in the form its
// position needs ("${V}" in a bare word, ${V} inside double quotes or in
// the body of an unquoted here-document). The shell expands a variable's
// value as data, never as code, so the script behaves as if its author had
// written "$V" and passed V in the action's env.
//
// Finding the form needs to know, at each expression, whether the shell is
// in a bare word, inside quotes, a comment or a here-document: a small
// scanner of POSIX shell syntax ([ShellContexts]) tracks single and double
// quotes, backslashes, $'...', ${...}, $(...), $((...)), backquotes,
// comments and here-documents (<<EOF, <<-EOF, <<'EOF', <<"EOF"). Positions
// where a reference would not be expanded, or would change what the script
// means, are refused rather than guessed: inside single quotes, $'...', a
// quoted here-document, a here-document's delimiter, arithmetic, right
// after a backslash or a $, and inside backquotes that are themselves
// inside double quotes or a here-document.
//
// The scanner reads shell syntax, not the languages of the programs a
// script feeds: a value expanded in the body of `python <<EOF` or given to
// eval is code for that program, exactly as "$V" would be. Write such
// scripts to read the environment themselves.

// ShellContext is where a position of a POSIX shell script lies.
type ShellContext int

// The contexts [ShellContexts] tells apart.
const (
	// ShellBare is an unquoted word of a command (or an unquoted ${...}
	// in one): a reference is written "${V}".
	ShellBare ShellContext = iota
	// ShellDoubleQuoted is inside "...": a reference is written ${V}.
	ShellDoubleQuoted
	// ShellHeredoc is the body of an unquoted here-document (<<EOF):
	// a reference is written ${V}.
	ShellHeredoc
	// ShellComment is a comment: a reference is inert.
	ShellComment
	// ShellSingleQuoted is inside '...', where nothing is expanded.
	ShellSingleQuoted
	// ShellANSIQuoted is inside $'...', where nothing is expanded.
	ShellANSIQuoted
	// ShellQuotedHeredoc is the body of a quoted here-document
	// (<<'EOF', <<"EOF", <<\EOF), where nothing is expanded.
	ShellQuotedHeredoc
	// ShellHeredocDelimiter is the delimiter word of a here-document.
	ShellHeredocDelimiter
	// ShellArithmetic is inside $((...)), where values are evaluated as
	// arithmetic.
	ShellArithmetic
	// ShellEscaped is right after a backslash or a $, which would change
	// the reference itself.
	ShellEscaped
	// ShellAmbiguous is where shells disagree on quoting: inside
	// backquotes that are inside double quotes or a here-document,
	// nested backquotes, and after quotes inside a quoted ${...}.
	ShellAmbiguous
)

var shellContextNames = [...]string{
	ShellBare:             "a bare word",
	ShellDoubleQuoted:     "double quotes",
	ShellHeredoc:          "a here-document",
	ShellComment:          "a comment",
	ShellSingleQuoted:     "single quotes",
	ShellANSIQuoted:       "$'...' quotes",
	ShellQuotedHeredoc:    "a quoted here-document",
	ShellHeredocDelimiter: "a here-document's delimiter",
	ShellArithmetic:       "arithmetic $((...))",
	ShellEscaped:          "a position right after a backslash or a $",
	ShellAmbiguous:        "quoting that shells disagree on (backquotes inside double quotes or a here-document, nested backquotes, quotes inside a quoted ${...})",
}

func (c ShellContext) String() string {
	if c >= 0 && int(c) < len(shellContextNames) {
		return shellContextNames[c]
	}
	return fmt.Sprintf("ShellContext(%d)", int(c))
}

// Reference returns how a reference to the environment variable name is
// written at a position of this context, and false where none may be.
func (c ShellContext) Reference(name string) (string, bool) {
	switch c {
	case ShellBare:
		return `"${` + name + `}"`, true
	case ShellDoubleQuoted, ShellHeredoc, ShellComment:
		return "${" + name + "}", true
	}
	return "", false
}

// hint says what to write instead of a ${{ }} at a refused position.
func (c ShellContext) hint() string {
	switch c {
	case ShellSingleQuoted, ShellANSIQuoted:
		return `close the quotes around it ('...'"${{ ... }}"'...')`
	case ShellQuotedHeredoc:
		return "unquote the delimiter (<<EOF), or give the value in env and read it from the environment"
	case ShellHeredocDelimiter:
		return "write the delimiter literally"
	case ShellArithmetic:
		return "give the value in env and check that it is a number before computing with it"
	case ShellEscaped:
		return `remove the backslash or $ before it`
	case ShellAmbiguous:
		return "use $(...) instead of backquotes, and no quotes inside a quoted ${...}"
	}
	return ""
}

// ScriptVar is one ${{ ... }} of a script, moved into an environment
// variable by [InterpolateShell].
type ScriptVar struct {
	// Name is the variable's name.
	Name string
	// Value is the expression's value, rendered as by [Interpolate].
	Value string
	// Expr is the expression's source.
	Expr string
}

// ShellError is the error of [InterpolateShell] for an expression at a
// position where no reference can stand. It wraps [ErrTemplate].
type ShellError struct {
	// Expr is the expression's source, Offset its byte offset.
	Expr   string
	Offset int
	// Context is where it stands.
	Context ShellContext
}

func (e *ShellError) Error() string {
	return fmt.Sprintf("${{ %s }} at byte %d is inside %s: the value of an expression reaches a script through an environment variable, and a reference there would %s; %s",
		e.Expr, e.Offset, e.Context, e.effect(), e.Context.hint())
}

func (e *ShellError) effect() string {
	switch e.Context {
	case ShellSingleQuoted, ShellANSIQuoted, ShellQuotedHeredoc, ShellHeredocDelimiter:
		return "not be expanded"
	case ShellArithmetic:
		return "be evaluated as arithmetic"
	}
	return "not mean what the script says"
}

// Unwrap returns ErrTemplate.
func (e *ShellError) Unwrap() error { return ErrTemplate }

// marker stands for a ${{ ... }} in the text the scanner reads; a script
// cannot hold it (no argument or environment string can).
const marker = 0

// ShellContexts returns the context of each ${{ ... }} of a POSIX shell
// script, in order.
func ShellContexts(script string) ([]ShellContext, []Part, error) {
	parts, err := Split(script)
	if err != nil {
		return nil, nil, err
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Expr {
			b.WriteByte(marker)
			continue
		}
		if strings.IndexByte(p.Text, marker) >= 0 {
			return nil, nil, &templateError{"the script holds a NUL byte"}
		}
		b.WriteString(p.Text)
	}
	return scanShell(b.String()), parts, nil
}

// InterpolateShell rewrites the ${{ ... }} of a POSIX shell script into
// references to environment variables named by name(i) (i counts from
// 1), and returns the rewritten script and the variables with their
// values evaluated over env (a map in the shape of [Context.Map]). An
// expression where no reference can stand is a *[ShellError]; an
// expression that fails is an *[Error], as with [InterpolateMap].
func InterpolateShell(script string, env map[string]any, name func(i int) string) (string, []ScriptVar, error) {
	if !HasExpressions(script) {
		return script, nil, nil
	}
	ctxs, parts, err := ShellContexts(script)
	if err != nil {
		return "", nil, err
	}
	var b strings.Builder
	var vars []ScriptVar
	k := 0
	for _, p := range parts {
		if !p.Expr {
			b.WriteString(p.Text)
			continue
		}
		c := ctxs[k]
		k++
		src := strings.TrimSpace(p.Text)
		v, err := evalMap(p.Text, env, true)
		if err != nil {
			return "", nil, err
		}
		text, err := Render(v)
		if err != nil {
			return "", nil, &Error{Kind: ErrEval, Expr: src, Template: true, Message: err.Error()}
		}
		if strings.IndexByte(text, 0) >= 0 {
			return "", nil, &Error{Kind: ErrEval, Expr: src, Template: true, Message: "the value holds a NUL byte, which no environment variable can"}
		}
		n := name(len(vars) + 1)
		ref, ok := c.Reference(n)
		if !ok {
			return "", nil, &ShellError{Expr: src, Offset: p.Offset, Context: c}
		}
		b.WriteString(ref)
		vars = append(vars, ScriptVar{Name: n, Value: text, Expr: src})
	}
	return b.String(), vars, nil
}

// The shell scanner.

type frameKind uint8

const (
	fCmd     frameKind = iota // the top level, $(...) and `...`
	fSingle                   // '...'
	fDouble                   // "..."
	fANSI                     // $'...'
	fParam                    // ${...}
	fArith                    // $((...))
	fHeredoc                  // a here-document's body
	fComment                  // # to the end of the line
)

type frame struct {
	kind frameKind
	// closer ends a command frame: ')' for $(...), '`' for backquotes,
	// 0 at the top level.
	closer byte
	// depth counts open parentheses (commands, arithmetic) or braces
	// (parameters).
	depth int
	// caseDepth counts open case commands, whose patterns end with ).
	caseDepth int
	// outer is the context around a parameter expansion, which it
	// inherits.
	outer ShellContext
	// ambiguous frames make every context inside them uncertain.
	ambiguous bool
	// wordStart: the next character starts a word (so # starts a
	// comment); cmdPos: that word is in command position.
	wordStart, cmdPos bool
	word              []byte
	// A here-document's body.
	doc       heredoc
	lineStart bool
}

type heredoc struct {
	delim  string
	strip  bool // <<-: leading tabs are removed
	quoted bool
}

type shellScanner struct {
	s       string
	i       int
	stack   []*frame
	pending []heredoc // here-documents whose bodies start at the next newline
	queue   []heredoc // bodies still to read after the current one
	out     []ShellContext
}

// scanShell returns the context of each marker byte of s. It reads any
// input in one pass, without backtracking beyond a line.
func scanShell(s string) []ShellContext {
	sc := &shellScanner{s: s}
	sc.push(&frame{kind: fCmd, wordStart: true, cmdPos: true})
	for sc.i < len(sc.s) {
		sc.step()
	}
	return sc.out
}

func (sc *shellScanner) top() *frame { return sc.stack[len(sc.stack)-1] }

func (sc *shellScanner) push(f *frame) { sc.stack = append(sc.stack, f) }

func (sc *shellScanner) pop() {
	if len(sc.stack) > 1 {
		sc.stack = sc.stack[:len(sc.stack)-1]
	}
}

func (sc *shellScanner) peek(k int) byte {
	if sc.i+k < len(sc.s) {
		return sc.s[sc.i+k]
	}
	return 0xff // never a character the scanner looks for
}

// mark records the context of a marker at sc.i, and moves past it.
func (sc *shellScanner) mark(c ShellContext) {
	for _, f := range sc.stack {
		if f.ambiguous && c != ShellComment {
			c = ShellAmbiguous
			break
		}
	}
	sc.out = append(sc.out, c)
	sc.i++
}

// context returns the context of a position in frame f.
func (sc *shellScanner) context(f *frame) ShellContext {
	switch f.kind {
	case fCmd:
		return ShellBare
	case fSingle:
		return ShellSingleQuoted
	case fDouble:
		return ShellDoubleQuoted
	case fANSI:
		return ShellANSIQuoted
	case fParam:
		return f.outer
	case fArith:
		return ShellArithmetic
	case fHeredoc:
		if f.doc.quoted {
			return ShellQuotedHeredoc
		}
		return ShellHeredoc
	case fComment:
		return ShellComment
	}
	return ShellBare
}

func (sc *shellScanner) step() {
	f := sc.top()
	switch f.kind {
	case fCmd:
		sc.stepCmd(f)
	case fComment:
		switch sc.s[sc.i] {
		case marker:
			sc.mark(ShellComment)
		case '\n':
			sc.pop() // the command frame reads the newline
		default:
			sc.i++
		}
	case fSingle:
		switch sc.s[sc.i] {
		case marker:
			sc.mark(ShellSingleQuoted)
		case '\'':
			sc.pop()
			sc.i++
		default:
			sc.i++
		}
	case fANSI:
		switch sc.s[sc.i] {
		case marker:
			sc.mark(ShellANSIQuoted)
		case '\\':
			sc.i += 2
		case '\'':
			sc.pop()
			sc.i++
		default:
			sc.i++
		}
	case fDouble:
		switch c := sc.s[sc.i]; c {
		case marker:
			sc.mark(ShellDoubleQuoted)
		case '"':
			sc.pop()
			sc.i++
		case '\\':
			sc.backslash(`$"\`+"`\n", false)
		case '$':
			sc.dollar(ShellDoubleQuoted, false)
		case '`':
			sc.i++
			sc.push(&frame{kind: fCmd, closer: '`', ambiguous: true, wordStart: true, cmdPos: true})
		default:
			sc.i++
		}
	case fParam:
		sc.stepParam(f)
	case fArith:
		switch sc.s[sc.i] {
		case marker:
			sc.mark(ShellArithmetic)
		case '(':
			f.depth++
			sc.i++
		case ')':
			if f.depth == 0 && sc.peek(1) == ')' {
				sc.pop()
				sc.i += 2
				return
			}
			if f.depth > 0 {
				f.depth--
			}
			sc.i++
		default:
			sc.i++
		}
	case fHeredoc:
		sc.stepHeredoc(f)
	}
}

// backslash reads a backslash and the character it escapes. In double
// quotes and here-documents only the characters in special are escaped;
// a marker right after a backslash is refused in any case.
func (sc *shellScanner) backslash(special string, any bool) {
	next := sc.peek(1)
	switch {
	case next == marker:
		sc.i++
		sc.mark(ShellEscaped)
	case next == 0xff && sc.i+1 >= len(sc.s):
		sc.i++
	case any || strings.IndexByte(special, next) >= 0:
		sc.i += 2
	default:
		sc.i++
	}
}

// dollar reads a $ and what it opens. in is the context around it; cmd
// says whether it is a command's word (where $'...' quotes).
func (sc *shellScanner) dollar(in ShellContext, cmd bool) {
	switch next := sc.peek(1); {
	case next == marker:
		sc.i++
		sc.mark(ShellEscaped)
	case next == '{':
		sc.i += 2
		sc.push(&frame{kind: fParam, outer: in})
	case next == '(' && sc.peek(2) == '(':
		sc.i += 3
		sc.push(&frame{kind: fArith})
	case next == '(':
		sc.i += 2
		sc.push(&frame{kind: fCmd, closer: ')', wordStart: true, cmdPos: true})
	case next == '\'' && cmd:
		sc.i += 2
		sc.push(&frame{kind: fANSI})
	case next != 0xff && strings.IndexByte("$#?!@*-0123456789", next) >= 0:
		sc.i += 2 // $$, $#, $?...: # does not start a comment
	default:
		sc.i++ // $NAME, or $" (read next as a double quote)
	}
}

func (sc *shellScanner) stepParam(f *frame) {
	quoted := f.outer != ShellBare
	switch c := sc.s[sc.i]; c {
	case marker:
		sc.mark(sc.context(f))
	case '}':
		if f.depth == 0 {
			sc.pop()
		} else {
			f.depth--
		}
		sc.i++
	case '{':
		f.depth++
		sc.i++
	case '\\':
		if quoted {
			sc.backslash(`$"\}`+"`\n", false)
		} else {
			sc.backslash("", true)
		}
	case '$':
		sc.dollar(f.outer, false)
	case '`':
		sc.i++
		sc.push(&frame{kind: fCmd, closer: '`', ambiguous: quoted, wordStart: true, cmdPos: true})
	case '\'':
		sc.i++
		if quoted {
			// Shells disagree on quotes in a quoted ${...}: what
			// follows is uncertain until the expansion ends.
			f.ambiguous = true
			sc.push(&frame{kind: fSingle, ambiguous: true})
			return
		}
		sc.push(&frame{kind: fSingle})
	case '"':
		sc.i++
		if quoted {
			f.ambiguous = true
			sc.push(&frame{kind: fDouble, ambiguous: true})
			return
		}
		sc.push(&frame{kind: fDouble})
	default:
		sc.i++
	}
}

// endWord ends the word being read in a command frame, counting case
// and esac in command position.
func (f *frame) endWord() {
	if f.cmdPos && len(f.word) > 0 {
		switch string(f.word) {
		case "case":
			f.caseDepth++
		case "esac":
			if f.caseDepth > 0 {
				f.caseDepth--
			}
		}
	}
	if len(f.word) > 0 {
		// Keywords that leave the next word in command position.
		switch string(f.word) {
		case "then", "do", "else", "elif", "if", "while", "until", "!", "{", "time":
			f.cmdPos = true
		default:
			f.cmdPos = false
		}
	}
	f.word = f.word[:0]
	f.wordStart = true
}

// operator ends a word at a control operator: the next word is a command.
func (f *frame) operator() {
	f.endWord()
	f.cmdPos = true
}

func (sc *shellScanner) stepCmd(f *frame) {
	c := sc.s[sc.i]
	if c == '#' && f.wordStart {
		sc.push(&frame{kind: fComment})
		sc.i++
		return
	}
	switch c {
	case marker:
		f.word = append(f.word, 'x')
		f.wordStart = false
		sc.mark(sc.context(f))
	case ' ', '\t':
		f.endWord()
		sc.i++
	case '\n':
		f.operator()
		sc.i++
		sc.startBodies()
	case ';', '&', '|':
		f.operator()
		sc.i++
	case '(':
		f.operator()
		f.depth++
		sc.i++
	case ')':
		f.operator()
		sc.i++
		switch {
		case f.depth > 0:
			f.depth--
		case f.caseDepth > 0:
			// the end of a case pattern
		case f.closer == ')':
			sc.pop()
		}
	case '`':
		sc.i++
		if f.closer == '`' {
			sc.pop()
			return
		}
		f.wordStart = false
		sc.push(&frame{kind: fCmd, closer: '`', wordStart: true, cmdPos: true})
	case '\'':
		f.wordStart = false
		f.word = append(f.word, c)
		sc.i++
		sc.push(&frame{kind: fSingle})
	case '"':
		f.wordStart = false
		f.word = append(f.word, c)
		sc.i++
		sc.push(&frame{kind: fDouble})
	case '\\':
		f.wordStart = false
		f.word = append(f.word, c)
		if f.closer == '`' && sc.peek(1) == '`' {
			// Nested backquotes: their quoting is a level deeper
			// than the scanner follows.
			sc.i += 2
			sc.push(&frame{kind: fCmd, closer: '`', ambiguous: true, wordStart: true, cmdPos: true})
			return
		}
		sc.backslash("", true)
	case '$':
		f.wordStart = false
		f.word = append(f.word, c)
		sc.dollar(ShellBare, true)
	case '<':
		f.endWord()
		if sc.peek(1) == '<' {
			if sc.peek(2) == '<' { // <<< here-string
				sc.i += 3
				return
			}
			sc.i += 2
			sc.heredocStart()
			return
		}
		sc.i++
	case '>':
		f.endWord()
		sc.i++
	default:
		f.wordStart = false
		f.word = append(f.word, c)
		sc.i++
	}
}

// heredocStart reads the delimiter word after << or <<-.
func (sc *shellScanner) heredocStart() {
	h := heredoc{}
	if sc.peek(0) == '-' {
		h.strip = true
		sc.i++
	}
	for sc.i < len(sc.s) && (sc.s[sc.i] == ' ' || sc.s[sc.i] == '\t') {
		sc.i++
	}
	var delim []byte
	bad := false
loop:
	for sc.i < len(sc.s) {
		c := sc.s[sc.i]
		switch c {
		case ' ', '\t', '\n', ';', '&', '|', '(', ')', '<', '>':
			break loop
		case marker:
			sc.mark(ShellHeredocDelimiter)
			bad = true
		case '\'':
			h.quoted = true
			sc.i++
			for sc.i < len(sc.s) && sc.s[sc.i] != '\'' {
				if sc.s[sc.i] == marker {
					sc.mark(ShellHeredocDelimiter)
					bad = true
					continue
				}
				delim = append(delim, sc.s[sc.i])
				sc.i++
			}
			sc.i++
		case '"':
			h.quoted = true
			sc.i++
			for sc.i < len(sc.s) && sc.s[sc.i] != '"' {
				if sc.s[sc.i] == marker {
					sc.mark(ShellHeredocDelimiter)
					bad = true
					continue
				}
				if sc.s[sc.i] == '\\' && sc.i+1 < len(sc.s) && strings.IndexByte(`$"\`+"`", sc.s[sc.i+1]) >= 0 {
					sc.i++
				}
				delim = append(delim, sc.s[sc.i])
				sc.i++
			}
			sc.i++
		case '\\':
			h.quoted = true
			sc.i++
			if sc.i < len(sc.s) {
				if sc.s[sc.i] == marker {
					sc.mark(ShellHeredocDelimiter)
					bad = true
					continue
				}
				delim = append(delim, sc.s[sc.i])
				sc.i++
			}
		default:
			delim = append(delim, c)
			sc.i++
		}
	}
	if len(delim) == 0 && !h.quoted || bad {
		// Not a here-document the scanner can follow (a syntax error,
		// or a refused delimiter): its body reads as commands.
		return
	}
	h.delim = string(delim)
	sc.pending = append(sc.pending, h)
}

// startBodies starts reading the bodies of the here-documents whose
// command line just ended.
func (sc *shellScanner) startBodies() {
	if len(sc.pending) == 0 {
		return
	}
	sc.queue = append(sc.queue, sc.pending...)
	sc.pending = sc.pending[:0]
	sc.nextBody()
}

func (sc *shellScanner) nextBody() {
	if len(sc.queue) == 0 {
		return
	}
	h := sc.queue[0]
	sc.queue = sc.queue[1:]
	sc.push(&frame{kind: fHeredoc, doc: h, lineStart: true})
}

func (sc *shellScanner) stepHeredoc(f *frame) {
	if f.lineStart {
		f.lineStart = false
		end := strings.IndexByte(sc.s[sc.i:], '\n')
		line := sc.s[sc.i:]
		if end >= 0 {
			line = line[:end]
		}
		if f.doc.strip {
			line = strings.TrimLeft(line, "\t")
		}
		if line == f.doc.delim {
			if end >= 0 {
				sc.i += end + 1
			} else {
				sc.i = len(sc.s)
			}
			sc.pop()
			sc.nextBody()
			return
		}
	}
	c := sc.s[sc.i]
	if f.doc.quoted {
		switch c {
		case marker:
			sc.mark(ShellQuotedHeredoc)
		case '\n':
			f.lineStart = true
			sc.i++
		default:
			sc.i++
		}
		return
	}
	switch c {
	case marker:
		sc.mark(ShellHeredoc)
	case '\n':
		f.lineStart = true
		sc.i++
	case '\\':
		sc.backslash("$\\`\n", false)
	case '$':
		sc.dollar(ShellHeredoc, false)
	case '`':
		sc.i++
		sc.push(&frame{kind: fCmd, closer: '`', ambiguous: true, wordStart: true, cmdPos: true})
	default:
		sc.i++
	}
}

// posixShells are the programs whose scripts [InterpolateShell] reads.
var posixShells = map[string]bool{"sh": true, "bash": true, "dash": true, "ash": true, "ksh": true, "mksh": true, "zsh": true, "posh": true, "yash": true}

// POSIXShell reports whether a command line (a shell and its flags, such
// as "bash -e -c") runs a POSIX shell, looking through "env [-i]
// [NAME=value]..." and "busybox", and returns the program it runs. No
// words means the default, a POSIX shell.
func POSIXShell(words []string) (string, bool) {
	for len(words) > 1 && baseName(words[0]) == "env" {
		words = words[1:]
		for len(words) > 1 && (strings.HasPrefix(words[0], "-") || strings.Contains(words[0], "=")) {
			words = words[1:]
		}
	}
	if len(words) == 0 {
		return "", true
	}
	prog := baseName(words[0])
	if prog == "busybox" && len(words) > 1 {
		prog = baseName(words[1])
	}
	return words[0], posixShells[prog]
}

func baseName(p string) string { return p[strings.LastIndex(p, "/")+1:] }
