package main

import (
	"fmt"
	"runtime"

	"github.com/palvella/palvella/core/version"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/spf13/cobra"
)

func newVersionCmd(app *App) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print Palvella's version and the plugin protocol versions it speaks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			info := struct {
				Version          string `json:"version"`
				ProtocolVersions []int  `json:"protocolVersions"`
				GoVersion        string `json:"goVersion"`
				Platform         string `json:"platform"`
			}{version.Version, sdk.ProtocolVersions, runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH}
			if output == "json" {
				return writeJSON(app.Out, info)
			}
			fmt.Fprintf(app.Out, "palvella %s\nplugin protocol: %s\ngo: %s\nplatform: %s\n", info.Version, joinInts(info.ProtocolVersions), info.GoVersion, info.Platform)
			return nil
		},
	}
	outputFlag(cmd, &output)
	return cmd
}
