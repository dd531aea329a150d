package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strconv"
	"sync"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// maxSecret bounds what one command's Secret holds (its environment and
// its files in): Kubernetes refuses Secrets over 1 MiB.
const maxSecret = 900 << 10

// filesInDir is where the files in are mounted, for the init container
// that copies them into the workspace.
const filesInDir = "/palvella/in"

// Why a command was stopped.
type stopReason int

const (
	notStopped stopReason = iota
	stoppedByTimeout
	stoppedByCancel
	stoppedByContext
	stoppedByOutput
	stoppedByTeardown
)

// run is one command's pod while it runs.
type run struct {
	ws   *workspace
	name string

	mu      sync.Mutex
	reason  stopReason
	once    sync.Once
	stopped chan struct{}
}

// stop records why the command stops (the first reason wins) and deletes
// its pod, with the grace period: the kubelet sends SIGTERM, then SIGKILL.
func (r *run) stop(reason stopReason) {
	r.mu.Lock()
	if r.reason == notStopped {
		r.reason = reason
	}
	r.mu.Unlock()
	r.once.Do(func() {
		close(r.stopped)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		grace := int64((r.ws.grace + time.Second - 1) / time.Second)
		err := r.ws.cl.cs.CoreV1().Pods(r.ws.ns).Delete(ctx, r.name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
		if err != nil && !apierrors.IsNotFound(err) {
			r.ws.cl.p.log.Warn("delete a stopped command's pod", "pod", r.name, "error", err)
		}
	})
}

func (r *run) stoppedBy() stopReason {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reason
}

// Exec runs one command in a new pod of the workspace's image: its
// environment (and files in) in a Secret made for it, its log streamed as
// the command's output, its container's exit code the command's.
func (p *Plugin) Exec(ctx context.Context, req *engine.ExecRequest, out func(stream string, data []byte) error) (*engine.ExecResult, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	ws, err := p.workspace(req.WorkspaceID)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("kubernetes engine: exec: %w", err)
	}
	if out == nil {
		out = func(string, []byte) error { return nil }
	}
	// out is called from the log reader and from this function: never at
	// the same time.
	var outMu sync.Mutex
	emit := func(stream string, b []byte) error {
		outMu.Lock()
		defer outMu.Unlock()
		return out(stream, b)
	}
	ws.mu.Lock()
	if ws.gone {
		ws.mu.Unlock()
		return nil, sdk.Errorf(sdk.ErrNotFound, "workspace_id", "no workspace %q", req.WorkspaceID)
	}
	if req.ExecID != "" {
		if ws.running[req.ExecID] != nil {
			ws.mu.Unlock()
			return nil, sdk.Errorf(sdk.ErrAlreadyExists, "exec_id", "an exec %q is running in this workspace", req.ExecID)
		}
		if ws.canceled[req.ExecID] {
			delete(ws.canceled, req.ExecID)
			ws.mu.Unlock()
			return &engine.ExecResult{ExitCode: 143, Cancelled: true}, nil
		}
	}
	ws.seq++
	name := fmt.Sprintf("palvella-%s-%d", ws.id[:12], ws.seq)
	ws.mu.Unlock()

	secret, pod, nonce, err := ws.objects(name, req)
	if err != nil {
		return nil, err
	}
	// With files out, the log goes through the trailer, which hands out
	// the output and keeps the files that follow it (filesout.go).
	logOut := emit
	var tr *trailer
	var trailerDone <-chan struct{}
	if nonce != "" {
		tr = newTrailer(nonce, emit)
		logOut, trailerDone = tr.write, tr.Done()
	}
	cs := ws.cl.cs
	// The pod and its Secret go once the command is over, in the
	// background so the result is not held up; Teardown waits for them.
	ws.removing.Add(1)
	defer func() {
		go func() {
			defer ws.removing.Done()
			dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			zero := int64(0)
			if err := cs.CoreV1().Pods(ws.ns).Delete(dctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil && !apierrors.IsNotFound(err) {
				p.log.Warn("delete a command's pod", "pod", name, "error", err)
			}
			if err := cs.CoreV1().Secrets(ws.ns).Delete(dctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				p.log.Warn("delete a command's Secret", "secret", name, "error", err)
			}
		}()
	}()
	if _, err := cs.CoreV1().Secrets(ws.ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		return nil, ctxOr(ctx, fmt.Errorf("kubernetes engine: create the command's Secret: %w", err))
	}
	created, err := cs.CoreV1().Pods(ws.ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return nil, ctxOr(ctx, fmt.Errorf("kubernetes engine: create the command's pod: %w", err))
	}

	r := &run{ws: ws, name: name, stopped: make(chan struct{})}
	ws.mu.Lock()
	if ws.gone {
		ws.mu.Unlock()
		return nil, sdk.Errorf(sdk.ErrNotFound, "workspace_id", "no workspace %q", req.WorkspaceID)
	}
	if req.ExecID != "" && ws.canceled[req.ExecID] {
		delete(ws.canceled, req.ExecID)
		ws.mu.Unlock()
		return &engine.ExecResult{ExitCode: 143, Cancelled: true}, nil
	}
	// Every running command is known to Teardown, which stops it; one
	// without an ExecID under its pod's name.
	key := req.ExecID
	if key == "" {
		key = "\x00" + name
	}
	ws.running[key] = r
	defer func() {
		ws.mu.Lock()
		delete(ws.running, key)
		ws.mu.Unlock()
	}()
	ws.mu.Unlock()

	wctx, wcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer wcancel()
	events := watchPod(wctx, cs, ws.ns, name, created.ResourceVersion)

	var timeout <-chan time.Time
	if req.Timeout > 0 {
		t := time.NewTimer(req.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	lctx, logStop := context.WithCancel(wctx)
	defer logStop()
	var (
		logDone  chan error
		noted    = map[string]bool{}
		final    *podState
		stopWait <-chan time.Time
		stopped  = r.stopped
	)
	note := func(line string) error {
		if line == "" || noted[line] {
			return nil
		}
		noted[line] = true
		return emit(engine.Stderr, []byte(line+"\n"))
	}
	for final == nil {
		select {
		case ev, ok := <-events:
			if !ok {
				return nil, ctxOr(ctx, fmt.Errorf("kubernetes engine: the watch of pod %s ended", name))
			}
			if ev.err != nil {
				return nil, ctxOr(ctx, fmt.Errorf("kubernetes engine: watch pod %s: %w", name, ev.err))
			}
			if ev.deleted {
				if st := stateOf(ev.pod); st.done {
					final = &st
					continue
				}
				if r.stoppedBy() == notStopped {
					return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "", "kubernetes engine: pod %s was deleted (not by the engine) before its command ended", name)
				}
				final = &podState{done: true, exitCode: 143}
				continue
			}
			st := stateOf(ev.pod)
			if st.broken != "" && r.stoppedBy() == notStopped {
				r.stop(stoppedByContext)
				return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "image", "kubernetes engine: the pod of image %q cannot run: %s", ws.params.image, st.broken)
			}
			if st.started && logDone == nil {
				logDone = make(chan error, 1)
				go func() { logDone <- streamLog(lctx, cs, ws.ns, name, logOut) }()
			}
			if err := note(st.note); err != nil {
				r.stop(stoppedByOutput)
				return nil, fmt.Errorf("kubernetes engine: exec: output: %w", err)
			}
			if st.done {
				final = &st
			}
		case <-timeout:
			timeout = nil
			go r.stop(stoppedByTimeout)
		case <-stopped:
			// Deleted: the pod reports its end or disappears; a cluster
			// that does neither is not waited for long.
			stopWait = time.After(ws.grace + 30*time.Second)
			stopped = nil
		case <-stopWait:
			final = &podState{done: true, exitCode: 143}
		case <-ctx.Done():
			r.stop(stoppedByContext)
			return nil, fmt.Errorf("kubernetes engine: exec: %w", ctx.Err())
		}
	}
	// The log ends when the container does; what the kubelet still holds
	// is read for a little while (with files out, until their end line).
	if logDone != nil {
		select {
		case err := <-logDone:
			var oe outputError
			if errors.As(err, &oe) {
				return nil, fmt.Errorf("kubernetes engine: exec: output: %w", oe.err)
			}
		case <-trailerDone:
		case <-time.After(10 * time.Second):
		case <-ctx.Done():
			return nil, fmt.Errorf("kubernetes engine: exec: %w", ctx.Err())
		}
	}
	res := &engine.ExecResult{ExitCode: final.exitCode}
	if tr != nil {
		files, err := ws.filesOut(ctx, name, tr, req.FilesOut, final.message, r.stoppedBy() == notStopped)
		if err != nil {
			return nil, err
		}
		res.FilesOut = files
	}
	switch r.stoppedBy() {
	case stoppedByTimeout:
		res.TimedOut = true
	case stoppedByCancel, stoppedByTeardown:
		res.Cancelled = true
	case stoppedByContext:
		return nil, fmt.Errorf("kubernetes engine: exec: %w", context.Canceled)
	}
	if res.ExitCode == 0 && (res.TimedOut || res.Cancelled) {
		res.ExitCode = 143
	}
	return res, nil
}

func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("kubernetes engine: exec: %w", ctx.Err())
	}
	return err
}

// Cancel stops a running command by deleting its pod; one that has not
// started yet is cancelled before it runs.
func (p *Plugin) Cancel(ctx context.Context, workspaceID, execID string) error {
	ws, err := p.workspace(workspaceID)
	if err != nil {
		return err
	}
	ws.mu.Lock()
	r := ws.running[execID]
	if r == nil && execID != "" {
		ws.canceled[execID] = true
	}
	ws.mu.Unlock()
	if r != nil {
		r.stop(stoppedByCancel)
	}
	return nil
}

// objects are one command's Secret (its environment's values and its
// files in) and pod. No value of the environment is in the pod's spec:
// each variable refers to a key of the Secret.
func (ws *workspace) objects(name string, req *engine.ExecRequest) (*corev1.Secret, *corev1.Pod, string, error) {
	pr := ws.params
	argv := req.Command
	if len(argv) == 0 {
		shell := req.Shell
		if len(shell) == 0 {
			shell = pr.shell
		}
		argv = append(slices.Clone(shell), req.Script)
	}
	env := map[string]string{}
	maps.Copy(env, pr.environ)
	maps.Copy(env, req.Env)
	nonce := ""
	if len(req.FilesOut) > 0 {
		// The files come back at the end of the container's log
		// (filesout.go).
		wrapped, extra, n, err := withFilesOut(argv, ws.workdir, req.FilesOut)
		if err != nil {
			return nil, nil, "", err
		}
		nonce = n
		argv = wrapped
		maps.Copy(env, extra)
	}
	owner := []metav1.OwnerReference{anchorRef(ws.anchor)}
	labels := withLabel(ws.labels, labelRole, "command")
	if req.ExecID != "" {
		labels[labelExec] = labelValue(req.ExecID)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, OwnerReferences: owner},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{},
	}
	size := 0
	var envVars []corev1.EnvVar
	for i, k := range sortedKeys(env) {
		key := "env-" + strconv.Itoa(i)
		secret.Data[key] = []byte(env[k])
		size += len(env[k])
		envVars = append(envVars, corev1.EnvVar{Name: k, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key,
		}}})
	}
	var items []corev1.KeyToPath
	for i, f := range req.FilesIn {
		clean, _ := engine.CleanPath(fmt.Sprintf("files_in[%d].path", i), f.Path, false)
		key := "file-" + strconv.Itoa(i)
		secret.Data[key] = f.Content
		size += len(f.Content)
		mode := int32(f.Mode.Perm())
		if mode == 0 {
			mode = 0o644
		}
		items = append(items, corev1.KeyToPath{Key: key, Path: clean, Mode: &mode})
	}
	if size > maxSecret {
		return nil, nil, "", sdk.Errorf(sdk.ErrResourceExhausted, "files_in", "the command's environment and files in exceed %d KiB, what a Kubernetes Secret holds; keep large files in storage", maxSecret>>10)
	}
	workdir := ws.workdir
	if req.Workdir != "" {
		clean, err := engine.CleanPath("workdir", req.Workdir, true)
		if err != nil {
			return nil, nil, "", err
		}
		workdir = path.Join(ws.workdir, clean)
	}
	wsVolume := corev1.Volume{Name: "workspace", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	if ws.claim != "" {
		wsVolume.VolumeSource = corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: ws.claim}}
	}
	mounts := []corev1.VolumeMount{{Name: "workspace", MountPath: ws.workdir}}
	no := false
	automount := pr.automountToken
	grace := int64((ws.grace + time.Second - 1) / time.Second)
	annotations := maps.Clone(pr.annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[annotationHost] = ws.cl.p.host
	spec := corev1.PodSpec{
		RestartPolicy:                 corev1.RestartPolicyNever,
		ServiceAccountName:            pr.serviceAccount,
		AutomountServiceAccountToken:  &automount,
		EnableServiceLinks:            &no,
		NodeSelector:                  pr.nodeSelector,
		Tolerations:                   pr.tolerations,
		TerminationGracePeriodSeconds: &grace,
		Volumes:                       []corev1.Volume{wsVolume},
		Containers: []corev1.Container{{
			Name: commandContainer, Image: pr.image, ImagePullPolicy: pr.pullPolicy,
			// The argv is the whole command: the image's entrypoint does
			// not wrap it.
			Command: argv, WorkingDir: workdir, Env: envVars, Resources: pr.resources, VolumeMounts: mounts,
		}},
	}
	if pr.runAsUser != nil {
		spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: pr.runAsUser}
	}
	for _, s := range pr.pullSecrets {
		spec.ImagePullSecrets = append(spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	if req.Timeout > 0 {
		// A backstop: the engine deletes the pod at the timeout; should
		// the engine be gone by then, the kubelet ends it a minute later.
		deadline := int64((req.Timeout+time.Second-1)/time.Second) + 60
		spec.ActiveDeadlineSeconds = &deadline
	}
	if len(items) > 0 || req.Workdir != "" {
		// The files in are copied into the workspace (and the workdir
		// made) by an init container of the same image, before the
		// command starts.
		script := `mkdir -p "$1"`
		if len(items) > 0 {
			script += ` && cp -RL ` + filesInDir + `/. "$2"/`
			spec.Volumes = append(spec.Volumes, corev1.Volume{Name: "files-in", VolumeSource: corev1.VolumeSource{
				Secret: &corev1.SecretVolumeSource{SecretName: name, Items: items},
			}})
		}
		initMounts := slices.Clone(mounts)
		if len(items) > 0 {
			initMounts = append(initMounts, corev1.VolumeMount{Name: "files-in", MountPath: filesInDir, ReadOnly: true})
		}
		spec.InitContainers = []corev1.Container{{
			Name: "files-in", Image: pr.image, ImagePullPolicy: pr.pullPolicy,
			Command: []string{"sh", "-c", script, "files-in", workdir, ws.workdir}, VolumeMounts: initMounts,
		}}
	}
	podLabels := maps.Clone(pr.labels)
	if podLabels == nil {
		podLabels = map[string]string{}
	}
	maps.Copy(podLabels, labels)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: podLabels, Annotations: annotations, OwnerReferences: owner},
		Spec:       spec,
	}
	return secret, pod, nonce, nil
}

// podEvent is one change of the command's pod seen by the watch.
type podEvent struct {
	pod     *corev1.Pod
	deleted bool
	err     error
}

// watchPod sends the pod's changes from resourceVersion on, re-opening
// the watch when the server ends it, until ctx ends.
func watchPod(ctx context.Context, cs kubernetes.Interface, ns, name, resourceVersion string) <-chan podEvent {
	ch := make(chan podEvent, 16)
	send := func(ev podEvent) bool {
		select {
		case ch <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	go func() {
		defer close(ch)
		rv := resourceVersion
		failures := 0
		for ctx.Err() == nil {
			w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{
				FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(), ResourceVersion: rv, AllowWatchBookmarks: true,
			})
			if err != nil {
				if failures++; failures > 5 || ctx.Err() != nil {
					send(podEvent{err: err})
					return
				}
				time.Sleep(time.Duration(failures) * 200 * time.Millisecond)
				continue
			}
			for e := range w.ResultChan() {
				switch e.Type {
				case watch.Added, watch.Modified, watch.Deleted:
					pod, ok := e.Object.(*corev1.Pod)
					if !ok {
						continue
					}
					rv = pod.ResourceVersion
					failures = 0
					if !send(podEvent{pod: pod, deleted: e.Type == watch.Deleted}) {
						w.Stop()
						return
					}
				case watch.Bookmark:
					if pod, ok := e.Object.(*corev1.Pod); ok {
						rv = pod.ResourceVersion
					}
				case watch.Error:
					// Most often "too old resource version": start again
					// from the pod as it is now.
					if status := apierrors.FromObject(e.Object); apierrors.IsResourceExpired(status) || apierrors.IsGone(status) {
						pod, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
						if apierrors.IsNotFound(err) {
							send(podEvent{deleted: true, pod: &corev1.Pod{}})
							w.Stop()
							return
						}
						if err == nil {
							rv = pod.ResourceVersion
							send(podEvent{pod: pod})
						}
					}
				}
			}
			w.Stop()
		}
	}()
	return ch
}

// outputError is the output function's error, told apart from a broken
// log stream.
type outputError struct{ err error }

func (e outputError) Error() string { return e.err.Error() }

// streamLog follows the command container's log and hands it to out as
// stdout: Kubernetes keeps one log per container, without telling stdout
// from stderr. A log that cannot be read is said on stderr; the command's
// exit code still comes from the pod.
func streamLog(ctx context.Context, cs kubernetes.Interface, ns, name string, out func(string, []byte) error) error {
	rc, err := cs.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{Container: commandContainer, Follow: true}).Stream(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if oerr := out(engine.Stderr, []byte("kubernetes engine: the pod's log cannot be read: "+err.Error()+"\n")); oerr != nil {
			return outputError{oerr}
		}
		return nil
	}
	defer rc.Close()
	return copyLog(rc, out)
}

// copyLog hands a log stream to out in chunks as they arrive.
func copyLog(r io.Reader, out func(string, []byte) error) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if oerr := out(engine.Stdout, slices.Clone(buf[:n])); oerr != nil {
				return outputError{oerr}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}
	}
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
