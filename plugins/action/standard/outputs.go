package standard

import (
	"fmt"
	"regexp"
	"strings"
)

// maxOutputsFile bounds the file a run action's script writes its outputs
// to.
const maxOutputsFile = 1 << 20

var outputKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// badName says an output name is not valid without quoting it: a name or
// a delimiter may hold a secret, and a quoted (escaped) or shortened
// secret would escape masking, which replaces whole values only.
const badName = "not a valid output name (want letters, digits, _ and -, starting with a letter or _)"

// parseOutputs reads the file named by $PALVELLA_OUTPUT: one output per
// line as key=value, or a multi-line value as
//
//	key<<DELIMITER
//	line one
//	line two
//	DELIMITER
//
// Blank lines are ignored; a later line for the same key wins. The values
// true and false become booleans, so that an expression can say
// outputs.changed == true; every other value is a string.
func parseOutputs(data string) (map[string]any, error) {
	out := map[string]any{}
	lines := strings.Split(strings.ReplaceAll(data, "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.TrimSpace(line) == "" {
			continue
		}
		eq := strings.IndexByte(line, '=')
		heredoc := strings.Index(line, "<<")
		if heredoc > 0 && (eq < 0 || heredoc < eq) {
			key, delim := line[:heredoc], line[heredoc+2:]
			if !outputKey.MatchString(key) {
				return nil, fmt.Errorf("line %d: %s", i+1, badName)
			}
			if delim == "" {
				return nil, fmt.Errorf("line %d: output %q has an empty delimiter after <<", i+1, key)
			}
			start := i + 1
			end := -1
			for j := start; j < len(lines); j++ {
				if lines[j] == delim {
					end = j
					break
				}
			}
			if end < 0 {
				return nil, fmt.Errorf("line %d: output %q: the delimiter after << never comes", i+1, key)
			}
			out[key] = strings.Join(lines[start:end], "\n")
			i = end
			continue
		}
		if eq <= 0 {
			return nil, fmt.Errorf("line %d: want key=value or key<<DELIMITER", i+1)
		}
		key, value := line[:eq], line[eq+1:]
		if !outputKey.MatchString(key) {
			return nil, fmt.Errorf("line %d: %s", i+1, badName)
		}
		out[key] = scalar(value)
	}
	for k, v := range out {
		if s, ok := v.(string); ok {
			out[k] = strings.ToValidUTF8(s, "\uFFFD")
		}
	}
	return out, nil
}

func scalar(v string) any {
	switch v {
	case "true":
		return true
	case "false":
		return false
	}
	return v
}

// clip shortens what a message quotes from untrusted input.
func clip(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "..."
	}
	return s
}
