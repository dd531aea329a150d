package main

import (
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugins/engine/local"
)

var builtinTable = []Builtin{
	{Name: local.Name, Version: local.Version, Description: "Runs commands in a shell on the worker's host, in a fresh workspace per job.", Categories: []sdk.Category{sdk.CategoryEngine}, Serve: local.Serve},
}
