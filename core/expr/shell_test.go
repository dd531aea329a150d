package expr

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestShellContexts(t *testing.T) {
	B, D, H, C := ShellBare, ShellDoubleQuoted, ShellHeredoc, ShellComment
	S, A, Q, L := ShellSingleQuoted, ShellANSIQuoted, ShellQuotedHeredoc, ShellHeredocDelimiter
	R, E, M := ShellArithmetic, ShellEscaped, ShellAmbiguous
	cases := []struct {
		script string
		want   []ShellContext
	}{
		{`echo ${{ a }}`, []ShellContext{B}},
		{`echo x${{ a }}y ${{ b }}`, []ShellContext{B, B}},
		{`echo "${{ a }}"`, []ShellContext{D}},
		{`echo "built ${{ a }} in run ${{ b }}" > out`, []ShellContext{D, D}},
		{`grep -q "built ${{ a }}" out/artifact.txt`, []ShellContext{D}},
		{`echo '${{ a }}'`, []ShellContext{S}},
		{`echo 'it''s' ${{ a }}`, []ShellContext{B}},
		{`echo "it's" ${{ a }}`, []ShellContext{B}},
		{`echo "a \" ${{ a }}"`, []ShellContext{D}},
		{`echo "a \\" ${{ a }}`, []ShellContext{B}},
		{`echo \" ${{ a }}`, []ShellContext{B}},
		{`echo \' ${{ a }}`, []ShellContext{B}},
		{`echo \${{ a }}`, []ShellContext{E}},
		{`echo "\${{ a }}"`, []ShellContext{E}},
		{`echo $${{ a }}`, []ShellContext{E}},
		{`echo $'${{ a }}' ${{ b }}`, []ShellContext{A, B}},
		{`echo $'\'${{ a }}' ${{ b }}`, []ShellContext{A, B}},
		{`echo "$'" ${{ a }}`, []ShellContext{B}},
		{`# ${{ a }}` + "\necho ${{ b }}", []ShellContext{C, B}},
		{`echo a#${{ a }}`, []ShellContext{B}},
		{`echo $# ${{ a }}`, []ShellContext{B}},
		{`echo x # it's ${{ a }}` + "\necho ${{ b }}", []ShellContext{C, B}},
		{`x=$(echo ${{ a }})`, []ShellContext{B}},
		{`x="$(echo "${{ a }}" ${{ b }})${{ c }}"`, []ShellContext{D, B, D}},
		{`x="$(echo ')' ${{ a }})" ${{ b }}`, []ShellContext{B, B}},
		{`x="$(case a in a) echo ${{ a }};; esac) ${{ b }}"`, []ShellContext{B, D}},
		{`x="$( (echo ${{ a }}) ) ${{ b }}"`, []ShellContext{B, D}},
		{`echo $((1 + ${{ a }})) ${{ b }}`, []ShellContext{R, B}},
		{`echo "$(( (1) + ${{ a }} ))" ${{ b }}`, []ShellContext{R, B}},
		{`echo ${X:-${{ a }}} "${X:-${{ b }}}"`, []ShellContext{B, D}},
		{`echo ${X:-'${{ a }}'} ${{ b }}`, []ShellContext{S, B}},
		{`echo "${X:-'a'} ${{ a }}"`, []ShellContext{D}},
		{`echo "${X:-'a' ${{ a }}}"`, []ShellContext{M}},
		{"echo `echo ${{ a }}` ${{ b }}", []ShellContext{B, B}},
		{"echo \"`echo ${{ a }}`\" ${{ b }}", []ShellContext{M, B}},
		{"echo `echo \\`echo ${{ a }}\\``", []ShellContext{M}},
		{"cat <<EOF\n${{ a }} \"${{ b }}\" '${{ c }}'\nEOF\necho ${{ d }}", []ShellContext{H, H, H, B}},
		{"cat <<'EOF'\n${{ a }}\nEOF\necho ${{ b }}", []ShellContext{Q, B}},
		{"cat <<\"EOF\"\n${{ a }}\nEOF\necho ${{ b }}", []ShellContext{Q, B}},
		{"cat <<\\EOF\n${{ a }}\nEOF\necho ${{ b }}", []ShellContext{Q, B}},
		{"cat <<E\"O\"F\n${{ a }}\nEOF\necho ${{ b }}", []ShellContext{Q, B}},
		{"cat <<-EOF\n\t${{ a }}\n\tEOF\necho ${{ b }}", []ShellContext{H, B}},
		{"cat <<EOF\n\tEOF\n${{ a }}\nEOF\necho ${{ b }}", []ShellContext{H, B}},
		{"cat <<EOF; echo '${{ a }}'\n${{ b }}\nEOF\n", []ShellContext{S, H}},
		{"cat <<A <<'B'\n${{ a }}\nA\n${{ b }}\nB\n${{ c }}", []ShellContext{H, Q, B}},
		{"cat <<${{ a }}\nx\n", []ShellContext{L}},
		{"cat <<<${{ a }}", []ShellContext{B}},
		{"x=$(cat <<EOF\n${{ a }} )\nEOF\n) ${{ b }}", []ShellContext{H, B}},
		{"cat <<EOF\n$(echo ${{ a }}\necho ')'\n)${{ b }}\nEOF", []ShellContext{B, H}},
		{"echo \\\n${{ a }}", []ShellContext{B}},
		{`echo "${{ '"' }}" ${{ "'" }}`, []ShellContext{D, B}},
	}
	for _, tc := range cases {
		got, _, err := ShellContexts(tc.script)
		if err != nil {
			t.Errorf("%q: %v", tc.script, err)
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%q:\n got %v\nwant %v", tc.script, got, tc.want)
		}
	}
}

func TestInterpolateShell(t *testing.T) {
	env := Context{Params: map[string]any{"ref": "refs/heads/main", "n": 2, "list": []any{"a", "b"}}}.Map()
	name := func(i int) string { return fmt.Sprintf("V%d", i) }
	out, vars, err := InterpolateShell(`make REF="${{ params.ref }}" N=${{ params.n }} # ${{ params.list }}`, env, name)
	if err != nil {
		t.Fatal(err)
	}
	if want := `make REF="${V1}" N="${V2}" # ${V3}`; out != want {
		t.Errorf("got %q, want %q", out, want)
	}
	want := []ScriptVar{{"V1", "refs/heads/main", "params.ref"}, {"V2", "2", "params.n"}, {"V3", `["a","b"]`, "params.list"}}
	if fmt.Sprint(vars) != fmt.Sprint(want) {
		t.Errorf("vars %v, want %v", vars, want)
	}
	same, vars, err := InterpolateShell("echo plain", env, name)
	if same != "echo plain" || vars != nil || err != nil {
		t.Errorf("no expressions: %q %v %v", same, vars, err)
	}

	_, _, err = InterpolateShell(`echo '${{ params.ref }}'`, env, name)
	var se *ShellError
	if !errors.As(err, &se) || se.Context != ShellSingleQuoted || se.Expr != "params.ref" || !errors.Is(err, ErrTemplate) {
		t.Fatalf("single quotes: %v", err)
	}
	if !strings.Contains(err.Error(), "${{ params.ref }} at byte 6 is inside single quotes") {
		t.Errorf("message: %v", err)
	}
	if _, _, err := InterpolateShell(`echo "${{ params.nope }}"`, env, name); err == nil || !strings.Contains(err.Error(), "unknown name") {
		t.Errorf("unknown name: %v", err)
	}
	if _, _, err := InterpolateShell(`echo "${{ params.ref`, env, name); !errors.Is(err, ErrTemplate) {
		t.Errorf("unclosed: %v", err)
	}
	if _, _, err := InterpolateShell("echo \x00 ${{ params.ref }}", env, name); err == nil {
		t.Errorf("NUL accepted")
	}
}

// payloads are values that would run commands if pasted into a script.
var payloads = []string{
	`a";touch${IFS}pwned;"`,
	`$(touch pwned)`,
	"`touch pwned`",
	`'; touch pwned; '`,
	"x\ntouch pwned\n",
	"EOF\ntouch pwned\nEOF",
	`${IFS}*`,
	`\`,
	`-n`,
	` spaced  out `,
	`*`,
}

// scripts print the value of one ${{ params.v }} in various places; run
// with each payload, each prints the value exactly, on a line of its own.
var scripts = []string{
	`printf '%s\n' ${{ params.v }}`,
	`printf '%s\n' "${{ params.v }}"`,
	`printf '%s\n' "<${{ params.v }}>"`,
	`printf '%s\n' x${{ params.v }}y`,
	`x=${{ params.v }}; printf '%s\n' "$x"`,
	`printf '%s\n' "$(printf '%s' "${{ params.v }}")"`,
	`printf '%s\n' "$(printf '%s' ${{ params.v }})"`,
	`printf '%s\n' ${X:-${{ params.v }}}`,
	`printf '%s\n' "${X:-${{ params.v }}}"`,
	"cat <<EOF\n${{ params.v }}\nEOF",
	"cat <<-EOF\n\t<${{ params.v }}>\n\tEOF",
	"case ${{ params.v }} in *) printf '%s\\n' ${{ params.v }};; esac",
	"x=`printf '%s' ${{ params.v }}`; printf '%s\\n' \"$x\"",
	"# ${{ params.v }}\nprintf '%s\\n' ${{ params.v }}",
}

// TestInterpolateShellRuns runs rewritten scripts with sh and bash: the
// payloads are printed, never run.
func TestInterpolateShellRuns(t *testing.T) {
	for _, shell := range []string{"sh", "bash"} {
		path, err := exec.LookPath(shell)
		if err != nil {
			t.Logf("no %s: %v", shell, err)
			continue
		}
		for _, script := range scripts {
			for _, v := range payloads {
				dir := t.TempDir()
				env := Context{Params: map[string]any{"v": v}}.Map()
				out, vars, err := InterpolateShell(script, env, func(i int) string { return fmt.Sprintf("PALVELLA_EXPR_%d", i) })
				if err != nil {
					t.Fatalf("%s: %v", script, err)
				}
				cmd := exec.Command(path, "-e", "-c", out)
				cmd.Dir = dir
				cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
				for _, sv := range vars {
					cmd.Env = append(cmd.Env, sv.Name+"="+sv.Value)
				}
				got, err := cmd.CombinedOutput()
				if _, serr := os.Stat(filepath.Join(dir, "pwned")); serr == nil {
					t.Errorf("%s: %q with %q ran the payload", shell, script, v)
				}
				if err != nil {
					t.Errorf("%s: %q with %q: %v: %s", shell, out, v, err, got)
					continue
				}
				want := v
				switch {
				case strings.Contains(script, "<${{"):
					want = "<" + v + ">"
				case strings.HasPrefix(script, "printf '%s\\n' x"):
					want = "x" + v + "y"
				}
				// Command substitutions drop trailing newlines.
				if strings.Contains(script, "$(") || strings.Contains(script, "`") {
					want = strings.TrimRight(want, "\n")
				}
				if string(got) != want+"\n" {
					t.Errorf("%s: %q with %q printed %q, want %q", shell, out, v, got, want)
				}
			}
		}
	}
}

// FuzzShellContexts checks that the scanner ends on any input, gives one
// context per expression, and that the references it writes keep the
// scanner's view of the script: a reference written at a bare position is
// read as double-quoted, one written inside double quotes or a
// here-document stays there.
func FuzzShellContexts(f *testing.F) {
	for _, s := range scripts {
		f.Add(s)
	}
	for _, s := range []string{
		"echo '${{ a }}' \"${{ b }}\" $'${{ c }}' ${X:-${{ d }}} $((${{ e }}))",
		"cat <<EOF\n${{ a }}\nEOF\ncat <<'E'\n${{ b }}\nE\n${{ c }}",
		"x=$(case a in a) ${{ a }};; esac) `${{ b }}` \"`${{ c }}`\" # ${{ d }}",
		"\\${{ a }} $${{ b }} \"\\${{ c }}\" <<${{ d }}\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script string) {
		ctxs, parts, err := ShellContexts(script)
		if err != nil {
			return
		}
		n := 0
		for _, p := range parts {
			if p.Expr {
				n++
			}
		}
		if len(ctxs) != n {
			t.Fatalf("%d contexts for %d expressions", len(ctxs), n)
		}
		// Write each accepted reference with a marker where its
		// variable's value goes, and scan again.
		var b strings.Builder
		var want []ShellContext
		k := 0
		for _, p := range parts {
			if !p.Expr {
				b.WriteString(p.Text)
				continue
			}
			c := ctxs[k]
			k++
			ref, ok := c.Reference("V")
			if !ok {
				b.WriteString("${{ x }}")
				want = append(want, c)
				continue
			}
			b.WriteString(strings.Replace(ref, "${V}", "${{ x }}", 1))
			switch c {
			case ShellBare:
				want = append(want, ShellDoubleQuoted)
			default:
				want = append(want, c)
			}
		}
		again, _, err := ShellContexts(b.String())
		if err != nil {
			t.Fatalf("rescan: %v", err)
		}
		if fmt.Sprint(again) != fmt.Sprint(want) {
			t.Fatalf("rescan of %q: %v, want %v", b.String(), again, want)
		}
	})
}
