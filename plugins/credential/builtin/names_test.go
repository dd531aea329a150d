package builtin

import (
	"strings"
	"testing"
)

func TestCredentialNamesAreBounded(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"token", true}, {strings.Repeat("c", 253), true}, {strings.Repeat("c", 254), false}, {"_token", false}, {"a b", false},
	} {
		if err := checkName(tc.name); (err == nil) != tc.ok {
			t.Errorf("checkName(%.20q, %d bytes) = %v, want ok %v", tc.name, len(tc.name), err, tc.ok)
		}
	}
}
