package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// workspaceRoot is where the workspace is mounted in the pods, under the
// workspace's ID so that no two jobs share a path.
const workspaceRoot = "/palvella/ws/"

// workspace is one job: its anchor, its claim (if any) and settings.
type workspace struct {
	id      string
	workdir string
	ns      string
	// anchor is the ConfigMap every object of the job hangs from.
	anchor *corev1.ConfigMap
	// claim is the PersistentVolumeClaim of the workspace, or "".
	claim  string
	params params
	cl     *cluster
	labels map[string]string
	grace  time.Duration

	mu       sync.Mutex
	seq      int
	running  map[string]*run // by ExecID
	canceled map[string]bool // ExecIDs cancelled before they ran
	gone     bool
	// removing counts pods and Secrets being deleted in the background.
	removing sync.WaitGroup
}

// Setup makes the job's anchor (and claim) in its namespace.
func (p *Plugin) Setup(ctx context.Context, req *engine.SetupRequest) (*engine.Workspace, error) {
	cfg := p.config()
	pr, diags := parseParams(req.Options, cfg.params, "", nil)
	for _, d := range diags {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, d.Field, "%s", d.Summary)
	}
	if pr.image == "" {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "image", "the kubernetes engine needs an image: give one in the pipeline (engine: {type: kubernetes, image: ...}), the named engine or the plugin configuration")
	}
	cl, err := p.clusterFor(pr)
	if err != nil {
		return nil, err
	}
	ns := cl.defaultNamespace(pr)
	l, err := cl.namespace(ctx, ns)
	if err != nil {
		return nil, err
	}
	id := randomID(24)
	labels := map[string]string{
		labelEngine: TypeName, labelOwner: p.owner, labelWorkspace: id,
		labelNamespace: labelValue(req.Namespace), labelPipeline: labelValue(req.Pipeline),
		labelRun: labelValue(req.Run), labelJob: labelValue(req.Job),
	}
	anchor := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name: "palvella-ws-" + id, Labels: withLabel(labels, labelRole, "workspace"),
			Annotations:     map[string]string{annotationHost: p.host},
			OwnerReferences: []metav1.OwnerReference{l.ownerRef()},
		},
		Data: map[string]string{"namespace": req.Namespace, "pipeline": req.Pipeline, "run": req.Run, "job": req.Job},
	}
	created, err := cl.cs.CoreV1().ConfigMaps(ns).Create(ctx, anchor, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("kubernetes engine: create the job's anchor in namespace %s: %w", ns, err)
	}
	ws := &workspace{
		id: id, workdir: workspaceRoot + id, ns: ns, anchor: created, params: pr, cl: cl, labels: labels, grace: cfg.grace,
		running: map[string]*run{}, canceled: map[string]bool{},
	}
	if !pr.workspaceSize.IsZero() {
		claim := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: created.Name, Labels: withLabel(labels, labelRole, "workspace"),
				OwnerReferences: []metav1.OwnerReference{anchorRef(created)}},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: pr.workspaceSize}},
			},
		}
		if pr.storageClass != "" {
			sc := pr.storageClass
			claim.Spec.StorageClassName = &sc
		}
		if _, err := cl.cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, claim, metav1.CreateOptions{}); err != nil {
			p.removeWorkspace(context.WithoutCancel(ctx), ws)
			return nil, fmt.Errorf("kubernetes engine: create the workspace's claim: %w", err)
		}
		ws.claim = claim.Name
	}
	p.mu.Lock()
	p.workspaces[id] = ws
	p.mu.Unlock()
	return &engine.Workspace{ID: id, Workdir: ws.workdir}, nil
}

// Teardown stops the workspace's running commands (deleting their pods),
// then deletes its anchor, claim and whatever is left of its pods and
// Secrets.
func (p *Plugin) Teardown(ctx context.Context, workspaceID string) error {
	p.mu.Lock()
	ws := p.workspaces[workspaceID]
	delete(p.workspaces, workspaceID)
	p.mu.Unlock()
	if ws == nil {
		return sdk.Errorf(sdk.ErrNotFound, "workspace_id", "no workspace %q", workspaceID)
	}
	ws.mu.Lock()
	ws.gone = true
	runs := make([]*run, 0, len(ws.running))
	for _, r := range ws.running {
		runs = append(runs, r)
	}
	ws.mu.Unlock()
	for _, r := range runs {
		r.stop(stoppedByTeardown)
	}
	return p.removeWorkspace(ctx, ws)
}

// removeWorkspace waits for the background deletions, then deletes the
// claim and the anchor; the anchor's deletion takes (by garbage
// collection) anything of the job still there.
func (p *Plugin) removeWorkspace(ctx context.Context, ws *workspace) error {
	ws.removing.Wait()
	var errs []error
	background := metav1.DeletePropagationBackground
	if ws.claim != "" {
		if err := ws.cl.cs.CoreV1().PersistentVolumeClaims(ws.ns).Delete(ctx, ws.claim, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete claim %s: %w", ws.claim, err))
		}
	}
	if err := ws.cl.cs.CoreV1().ConfigMaps(ws.ns).Delete(ctx, ws.anchor.Name, metav1.DeleteOptions{PropagationPolicy: &background}); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("delete the job's anchor %s: %w", ws.anchor.Name, err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kubernetes engine: teardown: %w", err)
	}
	return nil
}

func (p *Plugin) workspace(id string) (*workspace, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ws := p.workspaces[id]
	if ws == nil {
		return nil, sdk.Errorf(sdk.ErrNotFound, "workspace_id", "no workspace %q", id)
	}
	return ws, nil
}

func withLabel(labels map[string]string, k, v string) map[string]string {
	out := maps.Clone(labels)
	out[k] = v
	return out
}

// labelValue makes s a valid label value: characters other than letters,
// digits, '-', '_' and '.' become '-', at most 63 of them, starting and
// ending with a letter or digit. The anchor's data keeps the whole names.
func labelValue(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '-'
		}
	}
	s = string(b)
	if len(s) > validation.LabelValueMaxLength {
		s = s[:validation.LabelValueMaxLength]
	}
	return strings.Trim(s, "-_.")
}
