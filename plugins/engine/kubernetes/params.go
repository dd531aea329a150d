package kubernetes

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	sdk "github.com/palvella/palvella/plugin-sdk"
	engineparams "github.com/palvella/palvella/plugins/engine/internal/params"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// params are the settings of a job's pods: the engine type's parameters (a
// named engine's or a pipeline's `engine: {type: kubernetes, ...}`) over
// the plugin configuration's, which are their defaults.
type params struct {
	// Where the cluster is: a kubeconfig file and a context in it. With
	// neither, in-cluster when the process runs in a pod, else $KUBECONFIG
	// or ~/.kube/config.
	kubeconfig string
	context    string

	namespace      string
	serviceAccount string
	// automountToken mounts the service account's API token into the
	// job's pods; off by default, so a job cannot call the API.
	automountToken bool
	image          string
	pullPolicy     corev1.PullPolicy
	pullSecrets    []string
	environ        map[string]string
	shell          []string
	resources      corev1.ResourceRequirements
	nodeSelector   map[string]string
	tolerations    []corev1.Toleration
	labels         map[string]string
	annotations    map[string]string
	runAsUser      *int64
	// workspaceSize, when set, gives the job a PersistentVolumeClaim of
	// that size (of storageClass) that every command's pod mounts; without
	// it each pod has an empty directory of its own.
	workspaceSize resource.Quantity
	storageClass  string
}

func defaultParams() params {
	return params{shell: []string{"sh", "-e", "-c"}}
}

func (p params) clone() params {
	p.environ = maps.Clone(p.environ)
	p.shell = slices.Clone(p.shell)
	p.pullSecrets = slices.Clone(p.pullSecrets)
	p.resources = *p.resources.DeepCopy()
	p.nodeSelector = maps.Clone(p.nodeSelector)
	p.tolerations = slices.Clone(p.tolerations)
	p.labels = maps.Clone(p.labels)
	p.annotations = maps.Clone(p.annotations)
	return p
}

// paramKeys are the keys parseParams knows.
var paramKeys = []string{"kubeconfig", "context", "namespace", "service_account", "automount_service_account_token", "image",
	"image_pull_policy", "image_pull_secrets", "environ", "shell", "resources", "node_selector", "tolerations",
	"labels", "annotations", "run_as_user", "workspace_size", "storage_class"}

// parseParams applies raw over base. Unknown keys are reported unless
// other says they belong to the caller. Problems are diagnostics on
// prefix+key; no value is ever printed that could be a secret (environ's
// values are not).
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
	strMap := func(k string, v any, check func(field, key, val string) bool) (map[string]string, bool) {
		m, ok := v.(map[string]any)
		if !ok {
			bad(k, "must be an object of strings (got %T)", v)
			return nil, false
		}
		out := map[string]string{}
		good := true
		for _, name := range slices.Sorted(maps.Keys(m)) {
			s, ok := m[name].(string)
			if !ok {
				bad(k+"."+name, "must be a string (got %T)", m[name])
				good = false
				continue
			}
			if check != nil && !check(k+"."+name, name, s) {
				good = false
				continue
			}
			out[name] = s
		}
		return out, good
	}
	qualifiedKey := func(field, key, val string) bool {
		if errs := validation.IsQualifiedName(key); len(errs) > 0 {
			bad(field, "%q is not a valid Kubernetes label or annotation key: %s", key, strings.Join(errs, "; "))
			return false
		}
		return true
	}
	labelKV := func(field, key, val string) bool {
		if !qualifiedKey(field, key, val) {
			return false
		}
		if errs := validation.IsValidLabelValue(val); len(errs) > 0 {
			bad(field, "%q is not a valid label value: %s", val, strings.Join(errs, "; "))
			return false
		}
		return true
	}
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		v := raw[k]
		switch k {
		case "kubeconfig":
			if s, ok := str(k, v); ok {
				p.kubeconfig = s
			}
		case "context":
			if s, ok := str(k, v); ok {
				p.context = s
			}
		case "namespace":
			if s, ok := str(k, v); ok {
				if errs := validation.IsDNS1123Label(s); len(errs) > 0 {
					bad(k, "%q is not a namespace name: %s", s, strings.Join(errs, "; "))
					continue
				}
				p.namespace = s
			}
		case "service_account":
			if s, ok := str(k, v); ok {
				if s != "" {
					if errs := validation.IsDNS1123Subdomain(s); len(errs) > 0 {
						bad(k, "%q is not a service account name: %s", s, strings.Join(errs, "; "))
						continue
					}
				}
				p.serviceAccount = s
			}
		case "automount_service_account_token":
			b, ok := v.(bool)
			if !ok {
				bad(k, "must be true or false (got %T)", v)
				continue
			}
			p.automountToken = b
		case "image":
			if s, ok := str(k, v); ok {
				p.image = s
			}
		case "image_pull_policy":
			if s, ok := str(k, v); ok {
				switch corev1.PullPolicy(s) {
				case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
					p.pullPolicy = corev1.PullPolicy(s)
				default:
					bad(k, `must be "Always", "IfNotPresent" or "Never" (got %q)`, s)
				}
			}
		case "image_pull_secrets":
			list, ok := v.([]any)
			if !ok {
				bad(k, "must be a list of Secret names")
				continue
			}
			p.pullSecrets = nil
			for i, item := range list {
				s, ok := item.(string)
				if !ok || len(validation.IsDNS1123Subdomain(s)) > 0 {
					bad(fmt.Sprintf("%s[%d]", k, i), "must be the name of a Secret of the namespace")
					continue
				}
				p.pullSecrets = append(p.pullSecrets, s)
			}
		case "environ":
			p.environ, _ = engineparams.Environ(k, v, p.environ, bad)
		case "shell":
			if shell, ok := engineparams.Shell(k, v, bad); ok {
				p.shell = shell
			}
		case "resources":
			m, ok := v.(map[string]any)
			if !ok {
				bad(k, "must be an object {requests: {cpu, memory}, limits: {cpu, memory}}")
				continue
			}
			p.resources = corev1.ResourceRequirements{}
			for _, part := range slices.Sorted(maps.Keys(m)) {
				if part != "requests" && part != "limits" {
					bad(k+"."+part, "unknown key (resources takes requests and limits)")
					continue
				}
				rm, ok := m[part].(map[string]any)
				if !ok {
					bad(k+"."+part, "must be an object of resource names to quantities such as {cpu: 500m, memory: 1Gi}")
					continue
				}
				list := corev1.ResourceList{}
				for _, name := range slices.Sorted(maps.Keys(rm)) {
					field := k + "." + part + "." + name
					var s string
					switch q := rm[name].(type) {
					case string:
						s = q
					case float64:
						s = fmt.Sprint(q)
					default:
						bad(field, "must be a quantity such as \"500m\" or \"1Gi\" (got %T)", rm[name])
						continue
					}
					qty, err := resource.ParseQuantity(s)
					if err != nil || qty.Sign() < 0 {
						bad(field, "must be a quantity such as \"500m\" or \"1Gi\" (got %q)", s)
						continue
					}
					if errs := validation.IsQualifiedName(name); len(errs) > 0 {
						bad(field, "%q is not a resource name", name)
						continue
					}
					list[corev1.ResourceName(name)] = qty
				}
				if part == "requests" {
					p.resources.Requests = list
				} else {
					p.resources.Limits = list
				}
			}
		case "node_selector":
			if m, ok := strMap(k, v, labelKV); ok {
				p.nodeSelector = m
			}
		case "labels":
			if m, ok := strMap(k, v, labelKV); ok {
				for name := range m {
					if strings.HasPrefix(name, "palvella.dev/") {
						bad(k+"."+name, "the palvella.dev/ labels are the engine's own")
						ok = false
					}
				}
				if ok {
					p.labels = m
				}
			}
		case "annotations":
			if m, ok := strMap(k, v, qualifiedKey); ok {
				p.annotations = m
			}
		case "tolerations":
			list, ok := v.([]any)
			if !ok {
				bad(k, "must be a list of {key, operator, value, effect}")
				continue
			}
			p.tolerations = nil
			for i, item := range list {
				t, probs := tolerationOf(item)
				for _, pr := range probs {
					bad(fmt.Sprintf("%s[%d]%s", k, i, pr[0]), "%s", pr[1])
				}
				if len(probs) == 0 {
					p.tolerations = append(p.tolerations, t)
				}
			}
		case "run_as_user":
			f, ok := v.(float64)
			if !ok || f != float64(int64(f)) || f < 0 {
				bad(k, "must be a non-negative whole number, a user ID (got %v)", v)
				continue
			}
			n := int64(f)
			p.runAsUser = &n
		case "workspace_size":
			s, ok := str(k, v)
			if !ok {
				continue
			}
			if s == "" {
				p.workspaceSize = resource.Quantity{}
				continue
			}
			qty, err := resource.ParseQuantity(s)
			if err != nil || qty.Sign() <= 0 {
				bad(k, "must be a storage size such as \"1Gi\" (got %q)", s)
				continue
			}
			p.workspaceSize = qty
		case "storage_class":
			if s, ok := str(k, v); ok {
				p.storageClass = s
			}
		default:
			if other != nil && other(k) {
				continue
			}
			bad(k, "unknown setting (the kubernetes engine knows %s)", strings.Join(paramKeys, ", "))
		}
	}
	return p, diags
}

// tolerationOf reads one toleration; problems are [field suffix, summary].
func tolerationOf(item any) (corev1.Toleration, [][2]string) {
	var t corev1.Toleration
	var probs [][2]string
	m, ok := item.(map[string]any)
	if !ok {
		return t, [][2]string{{"", "must be an object {key, operator, value, effect}"}}
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		s, isStr := v.(string)
		switch k {
		case "key", "value":
			if !isStr {
				probs = append(probs, [2]string{"." + k, fmt.Sprintf("must be a string (got %T)", v)})
				continue
			}
			if k == "key" {
				t.Key = s
			} else {
				t.Value = s
			}
		case "operator":
			if !isStr || (s != string(corev1.TolerationOpEqual) && s != string(corev1.TolerationOpExists)) {
				probs = append(probs, [2]string{".operator", fmt.Sprintf(`must be "Equal" or "Exists" (got %v)`, v)})
				continue
			}
			t.Operator = corev1.TolerationOperator(s)
		case "effect":
			switch corev1.TaintEffect(s) {
			case "", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
				t.Effect = corev1.TaintEffect(s)
			default:
				probs = append(probs, [2]string{".effect", fmt.Sprintf(`must be "NoSchedule", "PreferNoSchedule" or "NoExecute" (got %v)`, v)})
			}
		case "toleration_seconds":
			f, ok := v.(float64)
			if !ok || f != float64(int64(f)) {
				probs = append(probs, [2]string{".toleration_seconds", fmt.Sprintf("must be a whole number of seconds (got %v)", v)})
				continue
			}
			n := int64(f)
			t.TolerationSeconds = &n
		default:
			probs = append(probs, [2]string{"." + k, "unknown key (a toleration takes key, operator, value, effect, toleration_seconds)"})
		}
	}
	if t.Operator == corev1.TolerationOpExists && t.Value != "" {
		probs = append(probs, [2]string{".value", `must be empty when operator is "Exists"`})
	}
	if t.Key == "" && t.Operator != corev1.TolerationOpExists {
		probs = append(probs, [2]string{".key", `is required unless operator is "Exists"`})
	}
	return t, probs
}

// paramsSchema is the JSON Schema of the engine type's parameters, also
// accepted in the plugin configuration as their defaults.
func paramsSchema(extra map[string]any) map[string]any {
	str := func(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }
	strMap := func(desc string) map[string]any {
		return map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}, "description": desc}
	}
	quantities := map[string]any{"type": "object", "additionalProperties": map[string]any{"type": []any{"string", "number"}}}
	props := map[string]any{
		"kubeconfig":      str("Path of a kubeconfig file. Default: in-cluster credentials when the server runs in a pod, else $KUBECONFIG or ~/.kube/config."),
		"context":         str("Context of the kubeconfig to use; default its current context."),
		"namespace":       str("Namespace of the job's pods and Secrets. Default: the server's own namespace in-cluster, else default."),
		"service_account": str("Service account the job's pods run as; default the namespace's default."),
		"automount_service_account_token": map[string]any{"type": "boolean",
			"description": "Mount the service account's API token into the job's pods (default false: a job cannot call the Kubernetes API)."},
		"image":              str("Image every command of the job runs in, such as golang:1.26."),
		"image_pull_policy":  map[string]any{"type": "string", "enum": []any{"Always", "IfNotPresent", "Never"}, "description": "When the kubelet pulls the image; default Kubernetes' own."},
		"image_pull_secrets": map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "description": "Secrets of the namespace the kubelet pulls the image with."},
		"environ":            strMap("Variables every command of the job gets; an action's env overrides them. Values reach the pod through a Secret, never its spec."),
		"shell": map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"type": "string", "minLength": 1},
			"description": "Program and arguments that run a script in the container. Default: [sh, -e, -c]."},
		"resources": map[string]any{"type": "object", "additionalProperties": false, "description": "Requests and limits of each command's container, as in a pod spec.",
			"properties": map[string]any{"requests": quantities, "limits": quantities}},
		"node_selector": strMap("Node labels the job's pods must run on (the pod's nodeSelector)."),
		"tolerations": map[string]any{"type": "array", "description": "Taints the job's pods tolerate.",
			"items": map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{
				"key": str(""), "operator": map[string]any{"type": "string", "enum": []any{"Equal", "Exists"}}, "value": str(""),
				"effect":             map[string]any{"type": "string", "enum": []any{"", "NoSchedule", "PreferNoSchedule", "NoExecute"}},
				"toleration_seconds": map[string]any{"type": "integer"},
			}}},
		"labels":         strMap("Labels added to the job's pods (not palvella.dev/ ones)."),
		"annotations":    strMap("Annotations added to the job's pods."),
		"run_as_user":    map[string]any{"type": "integer", "minimum": 0, "description": "User ID the commands run as; default the image's."},
		"workspace_size": str("Size of a PersistentVolumeClaim made for the job's workspace and shared by its commands, such as \"1Gi\". Default: none, each command's pod has an empty workspace of its own."),
		"storage_class":  str("Storage class of the workspace's claim; default the cluster's default class."),
	}
	// What a pipeline may set in an inline engine: what stays inside the
	// job's own pods. The cluster, namespace, service account (and its
	// token), pull secrets and storage reach beyond the job: only a named
	// engine of the server's configuration sets them.
	for _, k := range []string{"image", "environ", "shell", "resources", "node_selector", "tolerations", "labels", "annotations"} {
		p := maps.Clone(props[k].(map[string]any))
		p[sdk.SchemaPipeline] = true
		props[k] = p
	}
	maps.Copy(props, extra)
	return map[string]any{"type": "object", "additionalProperties": false, "properties": props}
}
