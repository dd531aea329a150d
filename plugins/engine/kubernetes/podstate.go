package kubernetes

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// commandContainer is the name of the container that runs the command.
const commandContainer = "command"

// podState is what the engine reads from a command's pod.
type podState struct {
	// started: the command's container runs or has run, so its log can be
	// read.
	started bool
	// done: the command is over, with exitCode.
	done     bool
	exitCode int
	// message is the command container's termination message: with
	// files out, whether the wrapper wrote them to the log (filesout.go).
	message string
	// note is a line for the job's log about how it ended or why it
	// waits (out of memory, evicted, unschedulable), or "".
	note string
	// broken is set when the pod cannot ever run the command (its image
	// cannot be pulled, its configuration is wrong): the reason.
	broken string
}

// waitingBroken are the reasons of a waiting container that will not run
// without a change: the kubelet retries them, the engine does not wait.
var waitingBroken = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true, "ErrImageNeverPull": true,
	"CreateContainerConfigError": true, "CreateContainerError": true, "RunContainerError": true,
}

// stateOf reads a pod: the command container's status, else the pod's
// phase and conditions.
func stateOf(pod *corev1.Pod) podState {
	var st podState
	for _, cs := range pod.Status.InitContainerStatuses {
		if w := cs.State.Waiting; w != nil && waitingBroken[w.Reason] {
			st.broken = fmt.Sprintf("%s: %s", w.Reason, w.Message)
			return st
		}
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			st.done, st.exitCode = true, int(t.ExitCode)
			st.note = fmt.Sprintf("kubernetes engine: copying the files in failed (container %s exited with %d: %s %s)", cs.Name, t.ExitCode, t.Reason, t.Message)
			return st
		}
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name != commandContainer {
			continue
		}
		switch {
		case cs.State.Terminated != nil:
			t := cs.State.Terminated
			st.started, st.done, st.exitCode, st.message = true, true, int(t.ExitCode), t.Message
			if t.Reason == "OOMKilled" {
				st.note = "kubernetes engine: the command's container ran out of memory (OOMKilled)"
			}
			return st
		case cs.State.Running != nil:
			st.started = true
		case cs.State.Waiting != nil:
			if waitingBroken[cs.State.Waiting.Reason] {
				st.broken = fmt.Sprintf("%s: %s", cs.State.Waiting.Reason, cs.State.Waiting.Message)
				return st
			}
		}
	}
	switch pod.Status.Phase {
	case corev1.PodFailed:
		// Failed without a terminated container: evicted, past its
		// deadline, rejected by the node.
		st.done, st.exitCode = true, 137
		st.note = fmt.Sprintf("kubernetes engine: the pod failed before its command ended: %s %s", pod.Status.Reason, pod.Status.Message)
	case corev1.PodSucceeded:
		st.done = true
	case corev1.PodPending:
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				st.note = "kubernetes engine: the pod waits for a node: " + c.Message
			}
		}
	}
	return st
}
