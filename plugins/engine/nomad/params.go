package nomad

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	sdk "github.com/palvella/palvella/plugin-sdk"
	engineparams "github.com/palvella/palvella/plugins/engine/internal/params"
)

// Drivers the engine runs jobs with.
const (
	driverRawExec = "raw_exec"
	driverDocker  = "docker"
)

// params are the settings of a job's Nomad job: the engine type's
// parameters (a named engine's or a pipeline's `engine: {type: nomad,
// ...}`) over the plugin configuration's, which are their defaults.
type params struct {
	// Where the cluster is and who the engine is there. Empty values fall
	// back to Nomad's own variables (NOMAD_ADDR, NOMAD_TOKEN, ...).
	address   string
	token     string
	region    string
	namespace string

	datacenters []string
	nodePool    string

	driver      string
	image       string
	networkMode string
	user        string
	// environ is given to every command; an action's env overrides it.
	environ  map[string]string
	shell    []string
	memoryMB int
	cpuMHz   int
}

func defaultParams() params {
	return params{
		driver:   driverDocker,
		shell:    []string{"sh", "-e", "-c"},
		memoryMB: 256,
		cpuMHz:   100,
	}
}

func (p params) clone() params {
	p.datacenters = slices.Clone(p.datacenters)
	p.environ = maps.Clone(p.environ)
	p.shell = slices.Clone(p.shell)
	return p
}

// paramKeys are the keys parseParams knows.
var paramKeys = []string{"address", "token", "region", "nomad_namespace", "datacenters", "node_pool",
	"driver", "image", "network_mode", "user", "environ", "shell", "memory", "cpu"}

// parseParams applies raw over base. Unknown keys are reported unless
// other says they belong to the caller. Problems are diagnostics on
// prefix+key; no diagnostic ever holds a value of token.
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
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		v := raw[k]
		switch k {
		case "address":
			if s, ok := str(k, v); ok {
				if s != "" {
					u, err := url.Parse(s)
					if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
						bad(k, "must be the Nomad HTTP API's address, such as http://127.0.0.1:4646 (got %q)", s)
						continue
					}
				}
				p.address = s
			}
		case "token":
			// Never print the value: it is a secret.
			if s, ok := v.(string); ok {
				p.token = s
			} else {
				bad(k, "must be a string (got %T); give it as {from_credential: NAME} or {from_env: VAR}", v)
			}
		case "region":
			if s, ok := str(k, v); ok {
				p.region = s
			}
		case "nomad_namespace":
			if s, ok := str(k, v); ok {
				p.namespace = s
			}
		case "node_pool":
			if s, ok := str(k, v); ok {
				p.nodePool = s
			}
		case "datacenters":
			list, ok := v.([]any)
			if !ok || len(list) == 0 {
				bad(k, "must be a non-empty list of datacenter names (wildcards such as \"*\" allowed)")
				continue
			}
			var dcs []string
			for i, item := range list {
				s, ok := item.(string)
				if !ok || s == "" {
					bad(fmt.Sprintf("%s[%d]", k, i), "must be a non-empty string")
					continue
				}
				dcs = append(dcs, s)
			}
			p.datacenters = dcs
		case "driver":
			if s, ok := str(k, v); ok {
				if s != driverRawExec && s != driverDocker {
					bad(k, `must be "docker" or "raw_exec" (got %q)`, s)
					continue
				}
				p.driver = s
			}
		case "image":
			if s, ok := str(k, v); ok {
				p.image = s
			}
		case "network_mode":
			if s, ok := str(k, v); ok {
				p.networkMode = s
			}
		case "user":
			if s, ok := str(k, v); ok {
				p.user = s
			}
		case "memory":
			n, err := parseMB(v)
			if err != nil {
				bad(k, "must be a size such as \"512m\" or \"2g\", or a number of megabytes: %v", err)
				continue
			}
			p.memoryMB = n
		case "cpu":
			f, ok := v.(float64)
			if !ok || f != float64(int(f)) || f < 1 {
				bad(k, "must be a positive whole number of MHz, as Nomad's resources.cpu (got %v)", v)
				continue
			}
			p.cpuMHz = int(f)
		case "shell":
			if shell, ok := engineparams.Shell(k, v, bad); ok {
				p.shell = shell
			}
		case "environ":
			p.environ, _ = engineparams.Environ(k, v, p.environ, bad)
		default:
			if other != nil && other(k) {
				continue
			}
			bad(k, "unknown setting (the nomad engine knows %s)", strings.Join(paramKeys, ", "))
		}
	}
	return p, diags
}

// parseMB reads "512m", "2g", "300" (megabytes) or a number of megabytes.
func parseMB(v any) (int, error) {
	switch t := v.(type) {
	case float64:
		if t < 1 || t != float64(int(t)) {
			return 0, fmt.Errorf("got %v", t)
		}
		return int(t), nil
	case string:
		s := strings.ToLower(strings.TrimSpace(t))
		s = strings.TrimSuffix(s, "b")
		mult := 1.0
		switch {
		case strings.HasSuffix(s, "g"):
			mult, s = 1024, strings.TrimSuffix(s, "g")
		case strings.HasSuffix(s, "m"):
			s = strings.TrimSuffix(s, "m")
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f*mult < 1 {
			return 0, fmt.Errorf("got %q", t)
		}
		return int(f * mult), nil
	}
	return 0, fmt.Errorf("got %T", v)
}

// paramsSchema is the JSON Schema of the engine type's parameters, also
// accepted in the plugin configuration as their defaults.
func paramsSchema(extra map[string]any) map[string]any {
	str := func(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }
	props := map[string]any{
		"address":         str("The Nomad HTTP API's address, such as https://nomad.example:4646. Default: NOMAD_ADDR, else http://127.0.0.1:4646 (TLS files from NOMAD_CACERT, NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY)."),
		"token":           str("ACL token the engine uses (submit-job, read-job, alloc-exec and read-fs on the namespace); never logged. Give it as {from_credential: NAME}. Default: NOMAD_TOKEN."),
		"region":          str("Nomad region of the jobs. Default: the agent's."),
		"nomad_namespace": str("Nomad namespace of the jobs. Default: NOMAD_NAMESPACE, else \"default\"."),
		"datacenters": map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"type": "string", "minLength": 1},
			"description": "Datacenters a job may be placed in (wildcards allowed). Default: Nomad's, every datacenter."},
		"node_pool": str("Node pool a job is placed in. Default: Nomad's (\"default\")."),
		"driver": map[string]any{"type": "string", "enum": []any{driverDocker, driverRawExec},
			"description": "Task driver of the job: docker (default; commands run in a container of image) or raw_exec (commands run on the Nomad client's host as the Nomad agent's user, without isolation: for trusted pipelines only)."},
		"image":        str("Image of the job's container, with driver docker, such as golang:1.26."),
		"network_mode": str("Docker network mode of the job's container (driver docker): \"none\", \"bridge\", \"host\", or a network's name. Default: the Nomad docker driver's."),
		"user":         str("User the job's task and commands run as. Default: the driver's (raw_exec: the Nomad agent's user; docker: the image's)."),
		"environ": map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"},
			"description": "Variables every command of the job gets; an action's env overrides them."},
		"shell": map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"type": "string", "minLength": 1},
			"description": "Program and arguments that run a script. Default: [sh, -e, -c]."},
		"memory": map[string]any{"type": []any{"string", "number"}, "description": "Memory of the job's task (Nomad resources.memory), such as \"512m\" or a number of megabytes. Default 256."},
		"cpu":    map[string]any{"type": "integer", "minimum": 1, "description": "CPU of the job's task in MHz (Nomad resources.cpu). Default 100."},
	}
	// What a pipeline may set in an inline engine: what stays inside the
	// job's own task. The cluster, the token, the driver (raw_exec runs on
	// the host), the user and the network reach beyond the job: only a
	// named engine of the server's configuration sets them.
	for _, k := range []string{"image", "environ", "shell", "memory", "cpu"} {
		p := maps.Clone(props[k].(map[string]any))
		p[sdk.SchemaPipeline] = true
		props[k] = p
	}
	maps.Copy(props, extra)
	return map[string]any{"type": "object", "additionalProperties": false, "properties": props}
}
