package sdk

import (
	"fmt"

	"github.com/palvella/palvella/plugin-sdk/types"
)

// Category is a plugin category. Values are only ever added.
type Category = types.Category

// The plugin categories.
const (
	CategoryUnspecified    = types.CategoryUnspecified
	CategoryAuthentication = types.CategoryAuthentication
	CategoryAuthorization  = types.CategoryAuthorization
	CategoryCredential     = types.CategoryCredential
	CategoryDatabase       = types.CategoryDatabase
	CategoryStorage        = types.CategoryStorage
	CategoryJob            = types.CategoryJob
	CategoryAction         = types.CategoryAction
	CategoryEngine         = types.CategoryEngine
)

// Categories lists every category, in their declared order.
func Categories() []Category { return types.Categories() }

// ParseCategory parses a category name such as "engine".
func ParseCategory(s string) (Category, error) {
	c, err := types.ParseCategory(s)
	if err != nil {
		return c, fmt.Errorf("sdk: %w", err)
	}
	return c, nil
}
