package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"

	"github.com/palvella/palvella/core/server"
	"github.com/spf13/cobra"
)

// Finding is one thing `palvella doctor` looked at.
type Finding struct {
	// Check names what was looked at: home-mode, file-mode, key-in-env...
	Check string `json:"check"`
	// Status is ok, warn or fail; warn and fail make doctor exit 1.
	Status string `json:"status"`
	Path   string `json:"path,omitempty"`
	// Mode is the file's permission bits, in octal.
	Mode    string `json:"mode,omitempty"`
	Message string `json:"message"`
	// Fix says what to do about it.
	Fix string `json:"fix,omitempty"`
}

// DoctorReport is the answer of `palvella doctor -o json`.
type DoctorReport struct {
	Home     string    `json:"home"`
	OK       bool      `json:"ok"`
	Findings []Finding `json:"findings"`
}

type doctorExit struct{ n int }

func (e doctorExit) Error() string { return fmt.Sprintf("doctor found %d problem(s)", e.n) }
func (e doctorExit) ExitCode() int { return 1 }

func newDoctorCmd(app *App) *cobra.Command {
	var output, listen, tlsCert, tlsKey, keyFile string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Report insecure settings found on disk and in the environment",
		Long: `Look at this machine's Palvella set-up and report what is insecure:

  - PALVELLA_HOME readable by others than its owner (it should be 0700);
  - cli.json, secret.key and the databases (palvella.db*, tokens.db*,
    credentials.db*) readable by others (they should be 0600);
  - the credential key in the environment (PALVELLA_SECRET_KEY), and the
    key file given with --secret-key-file or PALVELLA_SECRET_KEY_FILE
    readable by others;
  - the TLS private key (--tls-key) readable by others;
  - a server set to listen beyond loopback without TLS (--listen without
    --tls-cert and --tls-key), and a cli.json that talks to a server beyond
    loopback over plain http.

Give doctor the --listen, --tls-cert, --tls-key and --secret-key-file the
server is started with. It changes nothing. It exits 1 when it finds a
problem (status warn or fail), 0 otherwise.`,
		Example: `  palvella doctor
  palvella doctor --listen 0.0.0.0:7700 --tls-cert /etc/palvella/tls.crt --tls-key /etc/palvella/tls.key -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if keyFile == "" {
				keyFile = os.Getenv(server.SecretKeyFileEnv)
			}
			rep := doctor(app.Home, listen, tlsCert, tlsKey, keyFile)
			bad := 0
			for _, f := range rep.Findings {
				if f.Status != "ok" {
					bad++
				}
			}
			rep.OK = bad == 0
			if output == "json" {
				if err := writeJSON(app.Out, rep); err != nil {
					return err
				}
			} else {
				t := newTable(app.Out, "STATUS", "CHECK", "PATH", "MODE", "MESSAGE")
				for _, f := range rep.Findings {
					t.row(f.Status, f.Check, dash(f.Path), dash(f.Mode), f.Message)
				}
				if err := t.flush(); err != nil {
					return err
				}
				for _, f := range rep.Findings {
					if f.Fix != "" {
						fmt.Fprintf(app.Out, "fix: %s\n", f.Fix)
					}
				}
			}
			if bad > 0 {
				return doctorExit{bad}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:7700", "the address the server listens on")
	cmd.Flags().StringVar(&tlsCert, "tls-cert", "", "the server's --tls-cert")
	cmd.Flags().StringVar(&tlsKey, "tls-key", "", "the server's --tls-key")
	cmd.Flags().StringVar(&keyFile, "secret-key-file", "", "the server's --secret-key-file (env "+server.SecretKeyFileEnv+")")
	outputFlag(cmd, &output)
	return cmd
}

// doctor looks at the set-up of home and of a server started with the
// given settings.
func doctor(home, listen, tlsCert, tlsKey, keyFile string) DoctorReport {
	rep := DoctorReport{Home: home, Findings: []Finding{}}
	add := func(f Finding) { rep.Findings = append(rep.Findings, f) }
	mode := func(fi fs.FileInfo) string { return fmt.Sprintf("%04o", fi.Mode().Perm()) }

	switch fi, err := os.Stat(home); {
	case errors.Is(err, fs.ErrNotExist):
		add(Finding{Check: "home-mode", Status: "ok", Path: home, Message: "no home yet: the server creates it 0700"})
	case err != nil:
		add(Finding{Check: "home-mode", Status: "fail", Path: home, Message: err.Error()})
	case server.InsecureMode(fi.Mode()):
		add(Finding{Check: "home-mode", Status: "fail", Path: home, Mode: mode(fi),
			Message: "others can read the home, which holds the tokens, the credential key and the databases",
			Fix:     "chmod 700 " + home + " (the server does it when it starts)"})
	default:
		add(Finding{Check: "home-mode", Status: "ok", Path: home, Mode: mode(fi), Message: "readable by its owner only"})
	}

	var files []string
	for _, p := range server.PrivateFiles {
		m, _ := filepath.Glob(filepath.Join(home, p)) // the patterns are valid
		files = append(files, m...)
	}
	sort.Strings(files)
	for _, path := range files {
		fi, err := os.Lstat(path)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if server.InsecureMode(fi.Mode()) {
			add(Finding{Check: "file-mode", Status: "fail", Path: path, Mode: mode(fi),
				Message: "others can read it: it holds a token, a key or credentials", Fix: "chmod 600 " + path})
		} else {
			add(Finding{Check: "file-mode", Status: "ok", Path: path, Mode: mode(fi), Message: "readable by its owner only"})
		}
	}

	if os.Getenv(server.SecretKeyEnv) != "" {
		add(Finding{Check: "key-in-env", Status: "warn", Message: server.SecretKeyEnv + " holds the credential key: every process started from this environment inherits it, and /proc shows it to the same user",
			Fix: "keep the key in a file readable by the server's user only and start the server with --secret-key-file"})
	}
	if os.Getenv("PALVELLA_TOKEN") != "" {
		add(Finding{Check: "token-in-env", Status: "ok", Message: "PALVELLA_TOKEN is set: the CLI uses it; every process started from this environment can too"})
	}
	for _, kf := range []struct{ check, path, what string }{{"secret-key-file", keyFile, "the credential key"}, {"tls-key", tlsKey, "the TLS private key"}} {
		if kf.path == "" {
			continue
		}
		fi, err := os.Stat(kf.path)
		switch {
		case err != nil:
			add(Finding{Check: kf.check, Status: "fail", Path: kf.path, Message: err.Error()})
		case server.InsecureMode(fi.Mode()):
			add(Finding{Check: kf.check, Status: "fail", Path: kf.path, Mode: mode(fi), Message: "others can read " + kf.what, Fix: "chmod 600 " + kf.path})
		default:
			add(Finding{Check: kf.check, Status: "ok", Path: kf.path, Mode: mode(fi), Message: kf.what + " is readable by its owner only"})
		}
	}

	if !loopbackAddr(listen) && (tlsCert == "" || tlsKey == "") {
		add(Finding{Check: "listen-tls", Status: "fail", Message: "the server listens on " + listen + " without TLS: tokens and credential values cross the network in clear",
			Fix: "give --tls-cert and --tls-key, or put a reverse proxy that terminates TLS in front and listen on loopback"})
	} else {
		add(Finding{Check: "listen-tls", Status: "ok", Message: "the server listens on " + listen + map[bool]string{true: " (loopback)", false: " with TLS"}[loopbackAddr(listen)]})
	}
	if b, err := os.ReadFile(filepath.Join(home, server.CLIConfigFile)); err == nil {
		var cc server.CLIConfig
		if json.Unmarshal(b, &cc) == nil && cc.Server != "" {
			if u, err := url.Parse(cc.Server); err == nil && u.Scheme == "http" && !loopbackAddr(u.Host) {
				add(Finding{Check: "cli-server", Status: "fail", Path: filepath.Join(home, server.CLIConfigFile),
					Message: "the CLI sends its token to " + cc.Server + " over plain http", Fix: "serve the API over https and trust its CA with --ca-cert"})
			}
		}
	}
	return rep
}

// loopbackAddr reports whether host:port (or a host) is on loopback.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
