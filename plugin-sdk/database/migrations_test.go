package database

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestReadMigrations(t *testing.T) {
	ms, err := ReadMigrations(fstest.MapFS{
		"m/0002_more.sql":  {Data: []byte("B")},
		"m/0010_last.sql":  {Data: []byte("C")},
		"m/0001_first.sql": {Data: []byte("A")},
	}, "m")
	if err != nil || len(ms) != 3 || ms[0].SQL != "A" || ms[1].Version != 2 || ms[2].Name != "0010_last.sql" {
		t.Fatalf("ReadMigrations = %+v, %v", ms, err)
	}
	for _, tc := range []struct {
		files fstest.MapFS
		want  string
	}{
		{fstest.MapFS{"m/first.sql": {}}, "first.sql is not named NNNN_what.sql"},
		{fstest.MapFS{"m/0000_zero.sql": {}}, "0000_zero.sql is not named"},
		{fstest.MapFS{"m/0001_a.sql": {}, "m/1_b.sql": {}}, "have the same version"},
	} {
		if _, err := ReadMigrations(tc.files, "m"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
}
