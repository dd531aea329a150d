package pluginhost

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"

	goplugin "github.com/hashicorp/go-plugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// Sentinel errors of the plugin host.
var (
	ErrPluginNotFound = errors.New("pluginhost: plugin not found")
	// ErrChecksum means the binary on disk is not the one recorded at
	// install: it changed after it was installed.
	ErrChecksum = errors.New("pluginhost: plugin binary checksum mismatch")
	// ErrHandshake means the plugin did not complete the go-plugin handshake.
	ErrHandshake = errors.New("pluginhost: plugin handshake failed")
	// ErrProtocol means the plugin speaks no protocol version the core speaks.
	ErrProtocol = errors.New("pluginhost: plugin protocol version not supported")
	// ErrShutdown means the manager is shutting down.
	ErrShutdown = errors.New("pluginhost: shutting down")
	// ErrConfig means the plugin rejected its configuration.
	ErrConfig = errors.New("pluginhost: plugin rejected its configuration")
	// ErrBroken means the plugin's record (its lock entry) is broken, so it
	// is hosted as failed and never launched (Spec.Broken says why).
	ErrBroken = errors.New("pluginhost: plugin record is broken")
)

// HandshakeProblem says which way a launch failed before the plugin served.
type HandshakeProblem string

// Handshake problems, each with its own message.
const (
	ProblemChecksum         HandshakeProblem = "checksum"
	ProblemOutputBefore     HandshakeProblem = "output-before-handshake"
	ProblemWrongCookie      HandshakeProblem = "wrong-cookie"
	ProblemProtocol         HandshakeProblem = "protocol-mismatch"
	ProblemExited           HandshakeProblem = "exited-before-handshake"
	ProblemTimeout          HandshakeProblem = "timeout"
	ProblemNotExecutable    HandshakeProblem = "not-executable"
	ProblemTransport        HandshakeProblem = "transport"
	ProblemConfigure        HandshakeProblem = "configure"
	ProblemUnknownHandshake HandshakeProblem = "handshake"
)

// LaunchError is returned when a plugin cannot be started. Its message says
// what went wrong and what to do.
type LaunchError struct {
	Plugin  string
	Path    string
	Problem HandshakeProblem
	// PluginProtocol is the protocol version the plugin offered, for
	// ProblemProtocol.
	PluginProtocol int
	// HostProtocols are the versions the core speaks.
	HostProtocols []int
	// Output is what the plugin printed before the handshake (stdout line)
	// or the tail of its stderr.
	Output string
	Err    error
}

func (e *LaunchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "plugin %q (%s): ", e.Plugin, e.Path)
	switch e.Problem {
	case ProblemChecksum:
		b.WriteString("refusing to start: the binary's sha256 is not the one recorded when it was installed, so it changed after install. Reinstall it with `palvella plugin add`, or check it with `palvella plugin verify`")
	case ProblemOutputBefore:
		fmt.Fprintf(&b, "printed %q on stdout before its handshake line. A plugin must write nothing to stdout before the handshake; log to stderr instead", e.Output)
	case ProblemWrongCookie:
		fmt.Fprintf(&b, "refused Palvella's handshake cookie (%s): it is not a Palvella plugin, or was built for another go-plugin host", sdk.MagicCookieKey)
	case ProblemProtocol:
		fmt.Fprintf(&b, "speaks plugin protocol %d; this Palvella speaks %s. Install a version of the plugin built for protocol %s, or a Palvella that speaks %d",
			e.PluginProtocol, joinInts(e.HostProtocols), joinInts(e.HostProtocols), e.PluginProtocol)
	case ProblemExited:
		b.WriteString("exited before the handshake")
	case ProblemTimeout:
		b.WriteString("did not complete the handshake in time")
	case ProblemNotExecutable:
		b.WriteString("cannot be executed")
	case ProblemConfigure:
		b.WriteString("rejected its configuration")
	default:
		b.WriteString("handshake failed")
	}
	if e.Err != nil && e.Problem != ProblemChecksum && e.Problem != ProblemProtocol && e.Problem != ProblemOutputBefore {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Output != "" && e.Problem != ProblemOutputBefore {
		fmt.Fprintf(&b, "\nplugin stderr:\n%s", indent(e.Output))
	}
	return b.String()
}

// Unwrap lets errors.Is match the kind of failure and the cause.
func (e *LaunchError) Unwrap() []error {
	kind := ErrHandshake
	switch e.Problem {
	case ProblemChecksum:
		kind = ErrChecksum
	case ProblemProtocol:
		kind = ErrProtocol
	case ProblemConfigure:
		kind = ErrConfig
	}
	return []error{kind, e.Err}
}

func joinInts(vs []int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ", ")
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}

// go-plugin reports handshake failures only as formatted errors. These
// patterns read its messages (go-plugin v1.8); the tests of this package
// launch real plugins for each case, so an upgrade that changes a message
// fails loudly instead of silently degrading the explanation.
var (
	reUnrecognized = regexp.MustCompile(`(?s)^Unrecognized remote plugin message: (.*?)(\n|$)`)
	reIncompatible = regexp.MustCompile(`(?i)incompatible API version with plugin\. Plugin version: (\d+)`)
	// Messages a plugin prints when the cookie does not match: go-plugin's
	// own and the Palvella SDK's.
	cookieMessages = []string{"This binary is a plugin. These are not meant to be executed directly", "This program is a Palvella plugin"}
)

// classify turns a go-plugin start error into a LaunchError.
func classify(spec *Spec, err error, stderr string) *LaunchError {
	le := &LaunchError{Plugin: spec.Name, Path: spec.Path, HostProtocols: sdk.ProtocolVersions, Err: err, Output: stderr}
	msg := err.Error()
	switch {
	case errors.Is(err, goplugin.ErrChecksumsDoNotMatch):
		le.Problem = ProblemChecksum
		le.Output = ""
	case reIncompatible.MatchString(msg):
		le.Problem = ProblemProtocol
		le.PluginProtocol, _ = strconv.Atoi(reIncompatible.FindStringSubmatch(msg)[1]) // the pattern only matches digits
		le.Output = ""
	case containsAny(stderr, cookieMessages):
		le.Problem = ProblemWrongCookie
	case reUnrecognized.MatchString(msg) && reUnrecognized.FindStringSubmatch(msg)[1] != "":
		le.Problem = ProblemOutputBefore
		le.Output = reUnrecognized.FindStringSubmatch(msg)[1]
	case reUnrecognized.MatchString(msg):
		// An empty first line: stdout closed, the process ended.
		le.Problem = ProblemExited
		le.Err = errors.New("it closed stdout without printing a handshake line")
	case strings.Contains(msg, "exited before we could connect"):
		le.Problem = ProblemExited
	case strings.Contains(msg, "timeout while waiting for plugin to start"):
		le.Problem = ProblemTimeout
	case errors.As(err, new(*fs.PathError)):
		le.Problem = ProblemNotExecutable
	default:
		le.Problem = ProblemUnknownHandshake
	}
	return le
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
