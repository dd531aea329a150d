package resource

import "time"

// Worker is a remote worker (`palvella worker`) as the servers last heard
// of it: cluster-wide (no namespace), named by the worker, written by the
// server a worker's heartbeat reaches. Its labels are in Status, not in
// Meta.Labels, which are the server's.
type Worker struct {
	Meta
	Spec   WorkerSpec   `json:"spec"`
	Status WorkerStatus `json:"status"`
}

// WorkerSpec is what an operator asks of a worker.
type WorkerSpec struct {
	// Drain: the worker finishes the jobs it runs and leases no more.
	Drain bool `json:"drain,omitempty"`
}

// WorkerStatus is what the worker said at its last heartbeat.
type WorkerStatus struct {
	Labels   map[string]string `json:"labels,omitempty"`
	Version  string            `json:"version,omitempty"`
	Capacity int               `json:"capacity"`
	// Jobs are the jobs it runs, as namespace/run/job.
	Jobs []string `json:"jobs"`
	// Identity is the name of the token it authenticates with.
	Identity      string    `json:"identity,omitempty"`
	StartedAt     time.Time `json:"startedAt"`
	LastHeartbeat time.Time `json:"lastHeartbeat"`
	// Server is the server (replica) that heard the heartbeat.
	Server string `json:"server,omitempty"`
}

// WorkerQueue is a queue of jobs whose runs_on select workers: created
// when its first job is queued, so that every server knows which queues
// to lease from for a worker's labels. Named by the queue.
type WorkerQueue struct {
	Meta
	// Selector is the jobs' runs_on.
	Selector map[string]string `json:"selector"`
}
