package index

import (
	"strings"
	"testing"
)

func TestSizedPatternsKeepTheirBounds(t *testing.T) {
	for _, tc := range []struct {
		re       sizedRE
		what     string
		min, max int
		char     string
	}{
		{registryNameRe, "registry name", 1, 64, "a"}, {patternRe, "pattern", 1, 64, "*"}, {platformRe, "platform", 1, 32, "x"},
		{hex64Re, "sha256", 64, 64, "f"}, {hex128Re, "signature", 128, 128, "0"}, {keyIDRe, "key ID", 16, 16, "a"},
		{licenseRe, "license", 1, 128, "("},
	} {
		for n := tc.min - 1; n <= tc.max+1; n++ {
			want := n >= tc.min && n <= tc.max
			if got := tc.re.MatchString(strings.Repeat(tc.char, n)); got != want {
				t.Errorf("%s of %d characters: match %v, want %v", tc.what, n, got, want)
			}
		}
	}
	if hex64Re.MatchString(strings.Repeat("F", 64)) || platformRe.MatchString("Linux") {
		t.Error("upper case accepted where the pattern has none")
	}
}
