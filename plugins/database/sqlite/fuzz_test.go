package sqlite

import (
	"testing"

	"github.com/palvella/palvella/plugin-sdk/database"
)

// FuzzDecodePageToken feeds List's page token, which comes from the caller,
// to the decoder: it must not panic, and a token it accepts must name a
// position that encodes back to an equivalent token.
func FuzzDecodePageToken(f *testing.F) {
	f.Add(database.EncodePageToken(database.Resource{Key: database.Key{Namespace: "ns", Name: "n"}}))
	f.Add("")
	f.Add("not a token")
	f.Add("e30")
	f.Fuzz(func(t *testing.T, tok string) {
		pos, err := database.DecodePageToken(tok)
		if err != nil {
			return
		}
		again, err := database.DecodePageToken(database.EncodePageToken(database.Resource{Key: database.Key{Namespace: pos.Namespace, Name: pos.Name}}))
		if err != nil || *again != *pos {
			t.Fatalf("token %q decodes to %+v, which does not round trip (%+v, %v)", tok, pos, again, err)
		}
	})
}
