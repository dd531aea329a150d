package standard

import (
	"fmt"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/structpb"
)

func TestParseOutputs(t *testing.T) {
	got, err := parseOutputs("a=1\n\nb=x=y\r\nchanged=true\nflag=false\nempty=\nmsg<<END\nl1\n\nl2\nEND\na=2\n")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": "2", "b": "x=y", "changed": true, "flag": false, "empty": "", "msg": "l1\n\nl2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("parseOutputs = %v, want %v", got, want)
	}
	for _, bad := range []string{"novalue\n", "=x\n", "bad key=1\n", "k<<EOF\nnever closed\n", "k<<\n"} {
		if _, err := parseOutputs(bad); err == nil {
			t.Errorf("parseOutputs(%q) accepted it", bad)
		}
	}
}

func FuzzParseOutputs(f *testing.F) {
	for _, s := range []string{"a=1\n", "k<<E\nx\nE\n", "x<<=\n=\n", "\xff=\xfe", "a=b\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		out, err := parseOutputs(data)
		if err != nil {
			return
		}
		for k, v := range out {
			if !outputKey.MatchString(k) {
				t.Fatalf("key %q is not a valid output name", k)
			}
			if s, ok := v.(string); ok && !utf8.ValidString(s) {
				t.Fatalf("value of %q is not valid UTF-8", k)
			}
			if _, err := structpb.NewValue(v); err != nil {
				t.Fatalf("value of %q cannot be sent: %v", k, err)
			}
		}
	})
}
