// Package types holds the plain data of the plugin contracts (categories,
// the sentinel errors, identities, token and credential metadata) with no
// gRPC or go-plugin behind them, so that programs that only talk about
// plugins, such as the API's Go client, do not pull in the plugin
// machinery. The SDK's packages give them under their usual names
// (sdk.Category, sdk.ErrNotFound, authentication.Identity, ...).
package types

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Category is a plugin category. Values are only ever added.
type Category int

// The plugin categories.
const (
	CategoryUnspecified Category = iota
	CategoryAuthentication
	CategoryAuthorization
	CategoryCredential
	CategoryDatabase
	CategoryStorage
	CategoryJob
	CategoryAction
	CategoryEngine
)

var categoryNames = [...]string{
	CategoryUnspecified:    "unspecified",
	CategoryAuthentication: "authentication",
	CategoryAuthorization:  "authorization",
	CategoryCredential:     "credential",
	CategoryDatabase:       "database",
	CategoryStorage:        "storage",
	CategoryJob:            "job",
	CategoryAction:         "action",
	CategoryEngine:         "engine",
}

// Categories lists every category, in their declared order.
func Categories() []Category {
	return []Category{
		CategoryAuthentication, CategoryAuthorization, CategoryCredential, CategoryDatabase,
		CategoryStorage, CategoryJob, CategoryAction, CategoryEngine,
	}
}

func (c Category) String() string {
	if c < 0 || int(c) >= len(categoryNames) {
		return fmt.Sprintf("category(%d)", int(c))
	}
	return categoryNames[c]
}

// ParseCategory parses a category name such as "engine".
func ParseCategory(s string) (Category, error) {
	for i, name := range categoryNames {
		if i != 0 && strings.EqualFold(s, name) {
			return Category(i), nil
		}
	}
	return CategoryUnspecified, fmt.Errorf("unknown plugin category %q (want one of %s)", s, strings.Join(categoryNames[1:], ", "))
}

// MarshalJSON writes the category's name.
func (c Category) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

// UnmarshalJSON reads a category name.
func (c *Category) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("category must be a string: %w", err)
	}
	v, err := ParseCategory(s)
	if err != nil {
		return err
	}
	*c = v
	return nil
}
