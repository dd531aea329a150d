package docker

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	sdk "github.com/palvella/palvella/plugin-sdk"
	engineparams "github.com/palvella/palvella/plugins/engine/internal/params"
)

// params are the settings of a job's containers: the engine type's
// parameters (a named engine's or a pipeline's `engine: {type: docker,
// ...}`) over the plugin configuration's, which are their defaults.
type params struct {
	image    string
	platform string
	// environ is given to every command; an action's env overrides it.
	environ map[string]string
	volumes []volumeParam
	// Where the daemon is: a Docker context's name, or a host
	// (DOCKER_HOST form). host wins over context.
	context string
	host    string
	// Proxies the plugin uses to reach the daemon (not the containers).
	httpProxy, httpsProxy, noProxy string
	// proxyEnv comes from config.json's proxies.default: the containers'
	// proxy variables, as the Docker CLI sets them.
	proxyEnv map[string]string
	login    login

	shell     []string
	network   string
	user      string
	pull      string
	memory    int64
	nanoCPUs  int64
	pidsLimit int64
	init      bool
}

// volumeParam mounts a named volume or a host directory into every
// container of the job.
type volumeParam struct {
	name     string // a volume name, or an absolute host directory
	path     string // where it is mounted in the container
	readOnly bool
}

// login is how image pulls authenticate.
type login struct {
	username, password string
	// server limits username/password to one registry; empty is any.
	server      string
	credsStore  string
	credHelpers map[string]string
}

func defaultParams() params {
	return params{
		shell:   []string{"sh", "-e", "-c"},
		network: "job",
		pull:    "missing",
		init:    true,
	}
}

func (p params) clone() params {
	p.environ = maps.Clone(p.environ)
	p.volumes = slices.Clone(p.volumes)
	p.proxyEnv = maps.Clone(p.proxyEnv)
	p.login.credHelpers = maps.Clone(p.login.credHelpers)
	p.shell = slices.Clone(p.shell)
	return p
}

// paramKeys are the keys parseParams knows, in the order the schema lists
// them.
var paramKeys = []string{"image", "platform", "environ", "volumes", "context", "host", "http_proxy", "https_proxy", "no_proxy",
	"config.json", "login", "shell", "network", "user", "pull", "memory", "cpus", "pids_limit", "init"}

// parseParams applies raw over base. Unknown keys are reported unless
// other says they belong to the caller. Problems are diagnostics on
// prefix+key.
func parseParams(raw map[string]any, base params, prefix string, other func(string) bool) (params, []sdk.Diagnostic) {
	p := base.clone()
	var diags []sdk.Diagnostic
	bad := func(field, summary string, args ...any) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Field: prefix + field, Summary: fmt.Sprintf(summary, args...)})
	}
	str := func(k string, v any) (string, bool) {
		s, ok := v.(string)
		if !ok {
			bad(k, "must be a string (got %T)", v)
		}
		return s, ok
	}
	keys := slices.Sorted(maps.Keys(raw))
	for _, k := range keys {
		v := raw[k]
		switch k {
		case "image":
			if s, ok := str(k, v); ok {
				p.image = s
			}
		case "platform":
			if s, ok := str(k, v); ok {
				if s != "" && len(strings.Split(s, "/")) > 3 {
					bad(k, "must be os[/arch[/variant]], such as linux/amd64 (got %q)", s)
					continue
				}
				p.platform = s
			}
		case "context":
			if s, ok := str(k, v); ok {
				p.context = s
			}
		case "host":
			if s, ok := str(k, v); ok {
				if s != "" && !strings.Contains(s, "://") {
					bad(k, "must be a DOCKER_HOST address such as unix:///var/run/docker.sock or tcp://host:2376 (got %q)", s)
					continue
				}
				p.host = s
			}
		case "http_proxy":
			if s, ok := str(k, v); ok {
				p.httpProxy = s
			}
		case "https_proxy":
			if s, ok := str(k, v); ok {
				p.httpsProxy = s
			}
		case "no_proxy":
			if s, ok := str(k, v); ok {
				p.noProxy = s
			}
		case "user":
			if s, ok := str(k, v); ok {
				p.user = s
			}
		case "network":
			if s, ok := str(k, v); ok {
				if s == "" {
					bad(k, `must be "job", "none", "host", "bridge" or a network's name`)
					continue
				}
				p.network = s
			}
		case "pull":
			if s, ok := str(k, v); ok {
				if s != "missing" && s != "always" && s != "never" {
					bad(k, `must be "missing", "always" or "never" (got %q)`, s)
					continue
				}
				p.pull = s
			}
		case "memory":
			n, err := parseBytes(v)
			if err != nil {
				bad(k, "must be a size such as \"512m\" or \"2g\", or a number of bytes: %v", err)
				continue
			}
			p.memory = n
		case "cpus":
			f, ok := v.(float64)
			if s, isStr := v.(string); isStr {
				var err error
				f, err = strconv.ParseFloat(s, 64)
				ok = err == nil
			}
			if !ok || f < 0 {
				bad(k, "must be a non-negative number of CPUs such as 1.5 (got %v)", v)
				continue
			}
			p.nanoCPUs = int64(f * 1e9)
		case "pids_limit":
			f, ok := v.(float64)
			if !ok || f != float64(int64(f)) || f < 0 {
				bad(k, "must be a non-negative whole number (got %v)", v)
				continue
			}
			p.pidsLimit = int64(f)
		case "init":
			b, ok := v.(bool)
			if !ok {
				bad(k, "must be true or false (got %T)", v)
				continue
			}
			p.init = b
		case "shell":
			if shell, ok := engineparams.Shell(k, v, bad); ok {
				p.shell = shell
			}
		case "environ":
			p.environ, _ = engineparams.Environ(k, v, p.environ, bad)
		case "volumes":
			list, ok := v.([]any)
			if !ok {
				bad(k, "must be a list of {name, path}")
				continue
			}
			p.volumes = nil
			for i, item := range list {
				field := fmt.Sprintf("%s[%d]", k, i)
				m, ok := item.(map[string]any)
				if !ok {
					bad(field, "must be an object {name, path}")
					continue
				}
				name, _ := m["name"].(string)
				target, _ := m["path"].(string)
				ro, _ := m["read_only"].(bool)
				if name == "" {
					bad(field+".name", "is required: a Docker volume's name or an absolute host directory")
					continue
				}
				if !path.IsAbs(target) {
					bad(field+".path", "must be an absolute path in the container (got %q)", target)
					continue
				}
				p.volumes = append(p.volumes, volumeParam{name: name, path: path.Clean(target), readOnly: ro})
			}
		case "config.json":
			m, ok := v.(map[string]any)
			if !ok {
				bad(k, "must be an object such as {proxies: {default: {httpProxy: ...}}}")
				continue
			}
			env, probs := proxyEnvOf(m)
			for _, pr := range probs {
				bad(k+"."+pr[0], "%s", pr[1])
			}
			p.proxyEnv = env
		case "login":
			m, ok := v.(map[string]any)
			if !ok {
				bad(k, "must be an object {username, password, credsStore, credHelpers}")
				continue
			}
			l, probs := loginOf(m)
			for _, pr := range probs {
				bad(k+"."+pr[0], "%s", pr[1])
			}
			p.login = l
		default:
			if other != nil && other(k) {
				continue
			}
			bad(k, "unknown setting (the docker engine knows %s)", strings.Join(paramKeys, ", "))
		}
	}
	return p, diags
}

// proxyEnvOf turns config.json's proxies.default into the variables the
// Docker CLI gives containers: both cases of each.
func proxyEnvOf(m map[string]any) (map[string]string, [][2]string) {
	var probs [][2]string
	env := map[string]string{}
	for k := range m {
		if k != "proxies" {
			probs = append(probs, [2]string{k, "unknown key (config.json here takes proxies.default)"})
		}
	}
	proxies, _ := m["proxies"].(map[string]any)
	def, _ := proxies["default"].(map[string]any)
	names := map[string]string{"httpProxy": "HTTP_PROXY", "httpsProxy": "HTTPS_PROXY", "noProxy": "NO_PROXY", "ftpProxy": "FTP_PROXY", "allProxy": "ALL_PROXY"}
	for k, v := range def {
		name, ok := names[k]
		s, isStr := v.(string)
		if !ok || !isStr {
			probs = append(probs, [2]string{"proxies.default." + k, "must be one of httpProxy, httpsProxy, noProxy, ftpProxy, allProxy with a string value"})
			continue
		}
		env[name] = s
		env[strings.ToLower(name)] = s
	}
	return env, probs
}

func loginOf(m map[string]any) (login, [][2]string) {
	var l login
	var probs [][2]string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		s, isStr := v.(string)
		switch k {
		case "username", "password", "server", "credsStore":
			if !isStr {
				// Never print the value: it may be a password.
				probs = append(probs, [2]string{k, fmt.Sprintf("must be a string (got %T)", v)})
				continue
			}
			switch k {
			case "username":
				l.username = s
			case "password":
				l.password = s
			case "server":
				l.server = s
			case "credsStore":
				l.credsStore = s
			}
		case "credHelpers":
			hm, ok := v.(map[string]any)
			if !ok {
				probs = append(probs, [2]string{k, "must be an object of registry to helper name"})
				continue
			}
			l.credHelpers = map[string]string{}
			for reg, h := range hm {
				hs, ok := h.(string)
				if !ok || hs == "" {
					probs = append(probs, [2]string{k + "." + reg, "must be a helper's name (docker-credential-NAME)"})
					continue
				}
				l.credHelpers[reg] = hs
			}
		default:
			probs = append(probs, [2]string{k, "unknown key (login takes username, password, server, credsStore, credHelpers)"})
		}
	}
	if (l.username == "") != (l.password == "") {
		probs = append(probs, [2]string{"password", "username and password go together"})
	}
	return l, probs
}

// parseBytes reads "512m", "2g", "1024k", "100" (bytes) or a number.
func parseBytes(v any) (int64, error) {
	switch t := v.(type) {
	case float64:
		if t < 0 || t != float64(int64(t)) {
			return 0, fmt.Errorf("got %v", t)
		}
		return int64(t), nil
	case string:
		s := strings.ToLower(strings.TrimSpace(t))
		s = strings.TrimSuffix(s, "b")
		mult := int64(1)
		if s != "" {
			switch s[len(s)-1] {
			case 'k':
				mult = 1 << 10
			case 'm':
				mult = 1 << 20
			case 'g':
				mult = 1 << 30
			}
		}
		if mult > 1 {
			s = s[:len(s)-1]
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 {
			return 0, fmt.Errorf("got %q", t)
		}
		return int64(f * float64(mult)), nil
	}
	return 0, fmt.Errorf("got %T", v)
}

// paramsSchema is the JSON Schema of the engine type's parameters, also
// accepted in the plugin configuration as their defaults.
func paramsSchema(extra map[string]any) map[string]any {
	str := func(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }
	props := map[string]any{
		"image":    str("Image every command of the job runs in, such as golang:1.26. Pulled when absent (see pull)."),
		"platform": str("Platform of the image and containers, os[/arch[/variant]] (DOCKER_DEFAULT_PLATFORM)."),
		"environ": map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"},
			"description": "Variables every command of the job gets; an action's env overrides them."},
		"volumes": map[string]any{"type": "array", "description": "Volumes mounted into every container of the job.",
			"items": map[string]any{"type": "object", "additionalProperties": false, "required": []any{"name", "path"},
				"properties": map[string]any{
					"name":      str("A Docker volume's name, or an absolute directory on the daemon's host."),
					"path":      str("Absolute path it is mounted at in the container."),
					"read_only": map[string]any{"type": "boolean", "description": "Mount it read-only."},
				}}},
		"context":     str("Name of a Docker context (as `docker context ls` lists) whose endpoint is the daemon to use."),
		"host":        str("The daemon's address (DOCKER_HOST form: unix:///var/run/docker.sock, tcp://host:2376, ...); wins over context."),
		"http_proxy":  str("HTTP proxy the engine reaches the daemon through (not the containers' proxy)."),
		"https_proxy": str("HTTPS proxy the engine reaches the daemon through (not the containers' proxy)."),
		"no_proxy":    str("Hosts the engine reaches without a proxy."),
		"config.json": map[string]any{"type": "object", "description": "Docker CLI configuration: proxies.default gives the containers HTTP_PROXY, HTTPS_PROXY, NO_PROXY, FTP_PROXY and ALL_PROXY (both cases), as the Docker CLI does.",
			"properties": map[string]any{"proxies": map[string]any{"type": "object", "properties": map[string]any{"default": map[string]any{"type": "object",
				"properties": map[string]any{"httpProxy": str(""), "httpsProxy": str(""), "noProxy": str(""), "ftpProxy": str(""), "allProxy": str("")}}}}}},
		"login": map[string]any{"type": "object", "additionalProperties": false, "description": "How image pulls authenticate. Give the password as {from_credential: NAME} in the plugin configuration.",
			"properties": map[string]any{
				"username":    str("Registry user name."),
				"password":    str("Registry password or token; never logged."),
				"server":      str("Registry the username and password are for (such as ghcr.io); empty for any."),
				"credsStore":  str("Credential helper (docker-credential-NAME on the engine's PATH) asked for every registry's credentials."),
				"credHelpers": map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}, "description": "Registry -> helper name, asked before credsStore for that registry."},
			}},
		"shell": map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"type": "string", "minLength": 1},
			"description": "Program and arguments that run a script in the container. Default: [sh, -e, -c]."},
		"network": str(`Network of the containers: "job" (default: a network of the job's own, which no other job's containers are on), "none", "host", "bridge" or an existing network's name.`),
		"user":    str("User the commands run as (name, uid or uid:gid); default: the image's."),
		"pull":    map[string]any{"type": "string", "enum": []any{"missing", "always", "never"}, "description": "When to pull the image: when the daemon lacks it (default), always, or never."},
		"memory":  map[string]any{"type": []any{"string", "number"}, "description": "Memory limit of the job's container (all its commands together; a command in another image has its own), such as \"512m\" or \"2g\"."},
		"cpus":    map[string]any{"type": []any{"string", "number"}, "description": "CPU limit of the job's container (all its commands together; a command in another image has its own), such as 1.5."},
		"pids_limit": map[string]any{"type": "integer", "minimum": 0,
			"description": "Most processes the job's container may have (all its commands together; a command in another image has its own); 0 for the daemon's default."},
		"init": map[string]any{"type": "boolean", "description": "Run an init process as PID 1 that forwards signals and reaps zombies in a command's own container (default true); the job's container always has one."},
	}
	// What a pipeline may set in an inline engine: what stays inside the
	// job's own containers. Volumes, the daemon (host, context, proxies),
	// the network (host) and registry logins reach beyond the job: only a
	// named engine of the server's configuration sets them.
	for _, k := range []string{"image", "platform", "environ", "shell", "user", "pull", "memory", "cpus", "pids_limit", "init"} {
		p := maps.Clone(props[k].(map[string]any))
		p[sdk.SchemaPipeline] = true
		props[k] = p
	}
	maps.Copy(props, extra)
	return map[string]any{"type": "object", "additionalProperties": false, "properties": props}
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
