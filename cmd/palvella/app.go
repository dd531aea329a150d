package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
)

// App carries what the commands share: where Palvella keeps its data,
// where output goes, and the builtin plugins. Commands are built by
// constructors that take it, never from globals.
type App struct {
	Home     string
	Out      io.Writer
	Err      io.Writer
	Builtins []Builtin
	// LogLevel for the CLI's own log on stderr.
	LogLevel string
}

// run builds the command tree and executes it, returning the exit code.
func run(args []string) int {
	// `palvella plugin serve NAME` is how builtin plugins run. It is
	// dispatched before cobra so that a plugin process starts as fast as
	// possible and its stdout carries nothing but the handshake.
	if len(args) >= 3 && args[0] == "plugin" && args[1] == "serve" {
		return serveBuiltin(builtins(), args[2], args[3:], os.Stderr)
	}
	app := &App{Home: defaultHome(), Out: os.Stdout, Err: os.Stderr, Builtins: builtins()}
	root := newRootCmd(app)
	root.SetArgs(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(app.Err, "Error: %s\n", humanError(ctx, err))
		var ec exitCoder
		if errors.As(err, &ec) {
			return ec.ExitCode()
		}
		return 1
	}
	return 0
}

// exitCoder is an error that chooses the process's exit code.
type exitCoder interface{ ExitCode() int }

func defaultHome() string {
	if h := os.Getenv("PALVELLA_HOME"); h != "" {
		return h
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".palvella")
	}
	return ".palvella"
}

func newRootCmd(app *App) *cobra.Command {
	root := &cobra.Command{
		Use:   "palvella",
		Short: "A plugin-driven automation server",
		Long: `Palvella runs pipelines of jobs and actions. Everything that touches the outside
world (authentication, authorization, credentials, database, storage, job types,
action types, execution engines) is a plugin: a separate program the core talks
to over gRPC. Plugins come from registries, resolved by semver and verified by
signature.

Data lives under PALVELLA_HOME (default ~/.palvella).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&app.Home, "home", app.Home, "Palvella's data directory (env PALVELLA_HOME)")
	root.PersistentFlags().StringVar(&app.LogLevel, "log-level", "warn", "level of the CLI's own log on stderr: trace, debug, info, warn, error")
	root.SetOut(app.Out)
	root.SetErr(app.Err)
	root.AddCommand(newVersionCmd(app), newPluginCmd(app), newServerCmd(app), newRegistryCmd(app), newPipelineCmd(app), newRunCmd(app), newTokenCmd(app), newCredentialCmd(app),
		newEventsCmd(app), newTriggerCmd(app), newDoctorCmd(app), newWorkerCmd(app))
	strictGroups(root)
	return root
}

// strictGroups makes every command that only groups subcommands (palvella
// run, palvella pipeline, ...) refuse an unknown subcommand as the root
// refuses an unknown command: an error with suggestions and exit 1, where
// cobra would print the group's help and exit 0. Without arguments a group
// still prints its help.
func strictGroups(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		strictGroups(c)
	}
	if !cmd.HasParent() || !cmd.HasSubCommands() || cmd.Run != nil || cmd.RunE != nil {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
		}
		return fmt.Errorf("%s\n\nRun '%s --help' for its commands", msg, cmd.CommandPath())
	}
}

func (app *App) logger(name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: name, Output: app.Err, Level: hclog.LevelFromString(app.LogLevel)})
}
