package api

import (
	"strings"
	"testing"
)

func TestValidNameBoundsLengthAndCharacters(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true}, {"pipe-1.x_y", true}, {strings.Repeat("a", 253), true},
		{strings.Repeat("a", 254), false}, {"", false}, {"-a", false}, {"a/b", false}, {"é", false},
	} {
		if got := validName(tc.name); got != tc.ok {
			t.Errorf("validName(%.20q, %d bytes) = %v, want %v", tc.name, len(tc.name), got, tc.ok)
		}
	}
}
