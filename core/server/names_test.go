package server

import (
	"strings"
	"testing"
)

func TestNamePatternsBoundLengthAndCharacters(t *testing.T) {
	for _, tc := range []struct {
		re   sizedRE
		what string
		max  int
	}{{ownerRE, "owner", 128}, {credNameRE, "credential name", 128}, {credKeyRE, "credential key", 64}, {nsRE, "namespace", 253}} {
		if !tc.re.MatchString(strings.Repeat("a", tc.max)) || tc.re.MatchString(strings.Repeat("a", tc.max+1)) {
			t.Errorf("%s: want at most %d characters", tc.what, tc.max)
		}
		for _, bad := range []string{"", "-a", "a b", "é"} {
			if tc.re.MatchString(bad) {
				t.Errorf("%s: %q accepted", tc.what, bad)
			}
		}
	}
	if !ownerRE.MatchString("ci@example.com") || credNameRE.MatchString("ci@example.com") {
		t.Error("owner names take '@', credential names do not")
	}
}
