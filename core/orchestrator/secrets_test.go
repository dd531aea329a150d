package orchestrator

import (
	"reflect"
	"strings"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

func TestMaskerHidesEveryValueAndEachLineOfLongOnes(t *testing.T) {
	key := "-----BEGIN KEY-----\nAAAAsecretline1\r\nBBBBsecretline2\n-----END KEY-----"
	m := masker(maskList([]string{"hunter2", "hunter2-longer", key, "ab"}))
	cases := map[string]string{
		"password hunter2 ok":     "password *** ok",
		"hunter2-longer":          "***",
		"xhunter2hunter2y":        "x******y",
		"AAAAsecretline1":         "***",
		"  BBBBsecretline2  ":     "  ***  ",
		"ab is too short to hide": "ab is too short to hide",
		"nothing here":            "nothing here",
	}
	for in, want := range cases {
		if got := m(in); got != want {
			t.Errorf("mask(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMaskResultMasksOutputsAndMessages(t *testing.T) {
	o := &Orchestrator{}
	ref := sdk.ExecutionRef{Namespace: "default", Run: "deploy-1", Job: "ship"}
	k := secretKey{o: o, job: jobKey(ref.Namespace, ref.Run, ref.Job)}
	jobSecrets.Store(k, &secretSet{values: maskList([]string{"s3cr3t!"})})
	defer jobSecrets.Delete(k)
	msg, out := o.MaskResult(ref, "failed with s3cr3t!", map[string]any{"stdout": "s3cr3t!\n", "list": []any{"a s3cr3t!", 3}, "n": 1})
	if msg != "failed with ***" || out["stdout"] != "***\n" || out["list"].([]any)[0] != "a ***" || out["n"] != 1 {
		t.Fatalf("masked: %q %v", msg, out)
	}
	other := ref
	other.Job = "other"
	if got := o.maskerFor(other)("s3cr3t!"); got != "s3cr3t!" {
		t.Fatalf("another job's log is masked with this job's values: %q", got)
	}
}

func TestMaskResultMasksOutputKeys(t *testing.T) {
	o := &Orchestrator{}
	ref := sdk.ExecutionRef{Namespace: "default", Run: "deploy-1", Job: "keys"}
	k := secretKey{o: o, job: jobKey(ref.Namespace, ref.Run, ref.Job)}
	jobSecrets.Store(k, &secretSet{values: maskList([]string{"s3cr3t"})})
	defer jobSecrets.Delete(k)
	_, out := o.MaskResult(ref, "", map[string]any{
		"s3cr3t":       "x",
		"pre_s3cr3t":   "y",
		"***":          "the author's",
		"nested":       map[string]any{"s3cr3t": []any{map[string]any{"s3cr3t": "s3cr3t"}}},
		"exit_code":    0,
		"stdout":       "",
		"pre_s3cr3t_2": "z",
	})
	want := map[string]any{
		"***":       "the author's",
		"***_2":     "x",
		"pre_***":   "y",
		"pre_***_2": "z",
		"nested":    map[string]any{"***": []any{map[string]any{"***": "***"}}},
		"exit_code": 0,
		"stdout":    "",
	}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("masked:\n got %v\nwant %v", out, want)
	}
	for key := range out {
		if strings.Contains(key, "s3cr3t") {
			t.Errorf("key %q holds the secret", key)
		}
	}
}

func TestMaskerHidesQuotedForms(t *testing.T) {
	m := masker(maskList([]string{`p"a\ss<w>`}))
	for _, text := range []string{`p"a\ss<w>`, `"p\"a\\ss<w>"`, `{"k":"p\"a\\ss\u003cw\u003e"}`} {
		if got := m(text); strings.Contains(got, "ss") {
			t.Errorf("%s: %s", text, got)
		}
	}
}

func TestWantsToken(t *testing.T) {
	for v, want := range map[any]bool{true: true, "true": true, false: false, "no": false, 1: false} {
		if got := wantsToken(map[string]any{RunTokenParam: v}); got != want {
			t.Errorf("%v: %v, want %v", v, got, want)
		}
	}
	if wantsToken(nil) {
		t.Error("no params asked for a token")
	}
}

// FuzzMask: whatever the values and the text, a value of at least
// minMasked characters never survives masking.
func FuzzMask(f *testing.F) {
	f.Add("hunter2", "x hunter2 y")
	f.Add("aaa", "aaaa")
	f.Add("line1\nline2", "line1 and line2")
	f.Fuzz(func(t *testing.T, secret, text string) {
		m := masker(maskList([]string{secret}))
		out := m(text)
		for _, v := range maskList([]string{secret}) {
			if strings.Contains(v, mask) || strings.Contains(mask, v) {
				return // a value made of the mask itself
			}
			if strings.Contains(out, v) {
				t.Fatalf("mask(%q) with secret %q = %q still holds %q", text, secret, out, v)
			}
		}
	})
}
