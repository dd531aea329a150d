package trigger

import (
	"strings"
	"testing"
)

func TestValidNamesBoundsLengthAndCharacters(t *testing.T) {
	for _, tc := range []struct {
		names []string
		ok    bool
	}{
		{[]string{"default", "p", strings.Repeat("t", 253)}, true},
		{[]string{"default", strings.Repeat("p", 254)}, false},
		{[]string{"default", ".p"}, false},
		{[]string{"default", "p q"}, false},
	} {
		if got := validNames(tc.names...); got != tc.ok {
			t.Errorf("validNames(%.40q) = %v, want %v", tc.names, got, tc.ok)
		}
	}
}
