package kubernetes

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// cluster is a connection to one Kubernetes API server, with this engine
// process's Lease in each namespace it has used.
type cluster struct {
	p         *Plugin
	cs        kubernetes.Interface
	host      string
	inCluster bool

	mu     sync.Mutex
	leases map[string]*lease // by namespace
}

// lease is the engine process's Lease in one namespace: every job's
// anchor there hangs from it.
type lease struct {
	name string
	uid  types.UID
}

func (l *lease) ownerRef() metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "coordination.k8s.io/v1", Kind: "Lease", Name: l.name, UID: l.uid}
}

// namespace returns the engine's Lease in ns, creating it (and starting
// its renewal) on first use, after deleting the Leases of stopped engines
// there: Kubernetes' garbage collector then deletes the anchors, pods,
// Secrets and claims that hung from them.
func (cl *cluster) namespace(ctx context.Context, ns string) (*lease, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if l := cl.leases[ns]; l != nil {
		return l, nil
	}
	cfg := cl.p.config()
	if err := cl.sweep(ctx, ns); err != nil {
		return nil, err
	}
	name := "palvella-engine-" + cl.p.owner
	secs := int32((cfg.lease + time.Second - 1) / time.Second)
	now := metav1.NewMicroTime(time.Now())
	owner := cl.p.owner
	obj := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Labels:      map[string]string{labelEngine: TypeName, labelOwner: owner, labelRole: "engine"},
			Annotations: map[string]string{annotationHost: cl.p.host},
		},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &owner, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now},
	}
	// A server in a pod of this namespace: the Lease also goes when its
	// pod does.
	if podName, podUID := os.Getenv(EnvPodName), os.Getenv(EnvPodUID); podName != "" && podUID != "" && cl.inCluster && ns == cl.defaultNamespace(params{}) {
		obj.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: podName, UID: types.UID(podUID)}}
	}
	created, err := cl.cs.CoordinationV1().Leases(ns).Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("kubernetes engine: create the engine's Lease in namespace %s of %s: %w", ns, cl.host, err)
	}
	l := &lease{name: name, uid: created.UID}
	cl.leases[ns] = l
	go cl.renew(ns, l, cfg.lease)
	return l, nil
}

// renew keeps the Lease's renewTime current while the process lives. A
// Lease deleted under it (another engine took this one for dead) is
// forgotten, so that the next job makes a new one.
func (cl *cluster) renew(ns string, l *lease, every time.Duration) {
	t := time.NewTicker(max(every/3, 100*time.Millisecond))
	defer t.Stop()
	for range t.C {
		ctx, cancel := context.WithTimeout(context.Background(), every)
		now := metav1.NewMicroTime(time.Now())
		patch := fmt.Sprintf(`{"spec":{"renewTime":%q}}`, now.UTC().Format(metav1.RFC3339Micro))
		_, err := cl.cs.CoordinationV1().Leases(ns).Patch(ctx, l.name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		cancel()
		if apierrors.IsNotFound(err) {
			cl.p.log.Warn("the engine's Lease was deleted; jobs of this namespace get a new one", "namespace", ns)
			cl.mu.Lock()
			if cl.leases[ns] == l {
				delete(cl.leases, ns)
			}
			cl.mu.Unlock()
			return
		}
		if err != nil {
			cl.p.log.Warn("renew the engine's Lease", "namespace", ns, "error", err)
		}
	}
}

// sweep deletes the Leases of engines in ns that stopped renewing them
// (twice their duration ago), with what hangs from them.
func (cl *cluster) sweep(ctx context.Context, ns string) error {
	list, err := cl.cs.CoordinationV1().Leases(ns).List(ctx, metav1.ListOptions{LabelSelector: labelEngine + "=" + TypeName})
	if err != nil {
		return fmt.Errorf("kubernetes engine: list the engines' Leases in namespace %s of %s: %w", ns, cl.host, err)
	}
	background := metav1.DeletePropagationBackground
	for _, l := range list.Items {
		if l.Labels[labelOwner] == cl.p.owner || !expired(&l, time.Now()) {
			continue
		}
		err := cl.cs.CoordinationV1().Leases(ns).Delete(ctx, l.Name, metav1.DeleteOptions{
			PropagationPolicy: &background, Preconditions: &metav1.Preconditions{UID: &l.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("kubernetes engine: delete the Lease %s of a stopped engine: %w", l.Name, err)
		}
		cl.p.log.Info("deleted what a stopped engine left", "namespace", ns, "lease", l.Name, "host", l.Annotations[annotationHost])
	}
	return nil
}

// expired says whether a Lease has not been renewed for twice its
// duration: its engine is gone.
func expired(l *coordinationv1.Lease, now time.Time) bool {
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return true
	}
	d := time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	return now.Sub(l.Spec.RenewTime.Time) > 2*d
}

// anchorRef is an owner reference to a job's anchor, so that its pods,
// Secrets and claim go with it.
func anchorRef(cm *corev1.ConfigMap) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: cm.Name, UID: cm.UID}
}
