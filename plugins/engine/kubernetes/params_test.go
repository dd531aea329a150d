package kubernetes

import (
	"strings"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

func TestParamsRejectBadInputNamingTheField(t *testing.T) {
	for _, tc := range []struct {
		raw   map[string]any
		field string
	}{
		{map[string]any{"namespace": "Not_A_Namespace"}, "namespace"},
		{map[string]any{"service_account": "bad name"}, "service_account"},
		{map[string]any{"image": 3.0}, "image"},
		{map[string]any{"image_pull_policy": "Sometimes"}, "image_pull_policy"},
		{map[string]any{"image_pull_secrets": []any{"ok", "Bad/Name"}}, "image_pull_secrets[1]"},
		{map[string]any{"environ": map[string]any{"A=B": "x"}}, "environ.A=B"},
		{map[string]any{"environ": map[string]any{"TOKEN": 3.0}}, "environ.TOKEN"},
		{map[string]any{"shell": []any{}}, "shell"},
		{map[string]any{"resources": map[string]any{"requests": map[string]any{"cpu": "lots"}}}, "resources.requests.cpu"},
		{map[string]any{"resources": map[string]any{"maximum": map[string]any{}}}, "resources.maximum"},
		{map[string]any{"node_selector": map[string]any{"pool": "not a value!"}}, "node_selector.pool"},
		{map[string]any{"tolerations": []any{map[string]any{"key": "k", "operator": "Maybe"}}}, "tolerations[0].operator"},
		{map[string]any{"tolerations": []any{map[string]any{"value": "v"}}}, "tolerations[0].key"},
		{map[string]any{"tolerations": []any{map[string]any{"key": "k", "effect": "Evict"}}}, "tolerations[0].effect"},
		{map[string]any{"labels": map[string]any{"palvella.dev/job": "x"}}, "labels.palvella.dev/job"},
		{map[string]any{"annotations": map[string]any{"bad key!": "x"}}, "annotations.bad key!"},
		{map[string]any{"run_as_user": -1.0}, "run_as_user"},
		{map[string]any{"workspace_size": "big"}, "workspace_size"},
		{map[string]any{"automount_service_account_token": "yes"}, "automount_service_account_token"},
		{map[string]any{"volumes": []any{}}, "volumes"},
	} {
		_, diags := parseParams(tc.raw, defaultParams(), "", nil)
		if len(diags) != 1 || diags[0].Field != tc.field || diags[0].Severity != sdk.SeverityError {
			t.Errorf("%v: diagnostics %+v, want one error on %s", tc.raw, diags, tc.field)
		}
	}
}

func TestParamsNeverPrintAnEnvironValue(t *testing.T) {
	_, diags := parseParams(map[string]any{"environ": map[string]any{"A=B": "s3cret"}}, defaultParams(), "", nil)
	for _, d := range diags {
		if strings.Contains(d.Summary+d.Detail, "s3cret") {
			t.Fatalf("diagnostic %+v prints the value", d)
		}
	}
}

func TestConfigDurations(t *testing.T) {
	for _, tc := range []struct {
		raw   map[string]any
		field string
	}{
		{map[string]any{"kill_grace": "soon"}, "config.kill_grace"},
		{map[string]any{"lease_duration": "10ms"}, "config.lease_duration"},
		{map[string]any{"lease_duration": "5s", "kill_grace": "0s"}, ""},
	} {
		cfg, diags := parseConfig(tc.raw)
		if tc.field == "" {
			if len(diags) != 0 || cfg.lease.Seconds() != 5 || cfg.grace != 0 {
				t.Errorf("%v: %+v %+v", tc.raw, diags, cfg)
			}
			continue
		}
		if len(diags) != 1 || diags[0].Field != tc.field {
			t.Errorf("%v: diagnostics %+v, want one on %s", tc.raw, diags, tc.field)
		}
	}
}

func TestLabelValue(t *testing.T) {
	for in, want := range map[string]string{
		"build":                   "build",
		"setup:prepare-3":         "setup-prepare-3",
		"-x-":                     "x",
		strings.Repeat("a", 70):   strings.Repeat("a", 63),
		"ünïcode job":             "n--code-job",
		"release/2026.12 (final)": "release-2026.12--final",
	} {
		if got := labelValue(in); got != want {
			t.Errorf("labelValue(%q) = %q, want %q", in, got, want)
		}
	}
}
