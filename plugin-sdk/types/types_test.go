package types

import (
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// The package exists so that programs can use the contracts' data without
// the plugin machinery: it must not depend on gRPC or go-plugin.
func TestNoPluginMachinery(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "google.golang.org/grpc") || strings.Contains(dep, "hashicorp/go-plugin") || strings.Contains(dep, "protobuf") {
			t.Errorf("plugin-sdk/types depends on %s", dep)
		}
	}
}

func TestJSONNames(t *testing.T) {
	b, err := json.Marshal(struct {
		C Category
		S IdentityStatus
	}{CategoryEngine, StatusRevoked})
	if err != nil || string(b) != `{"C":"engine","S":"revoked"}` {
		t.Fatalf("marshal = %s, %v", b, err)
	}
	var back struct {
		C Category
		S IdentityStatus
	}
	if err := json.Unmarshal(b, &back); err != nil || back.C != CategoryEngine || back.S != StatusRevoked {
		t.Fatalf("unmarshal = %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"C":"engin"}`), &back); err == nil || !strings.Contains(err.Error(), `unknown plugin category "engin"`) {
		t.Fatalf("bad category: %v", err)
	}
	if _, err := ParseIdentityStatus("nope"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("bad status: %v", err)
	}
}
