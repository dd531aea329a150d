// Package events is the server's event bus: run, job, action, approval,
// trigger and plugin events, published by the core and delivered to
// subscribers (the /api/v1/events stream) filtered by namespace and
// pipeline.
//
// Delivery is best effort and never blocks a publisher: a subscriber that
// falls more than its buffer behind is told so by an event of type
// [TypeOverflow] and then dropped, and reconnects. Events are numbered;
// the bus keeps the last [Backlog] so a subscriber that reconnects with
// the last number it saw gets what it missed, when it is still kept.
package events

import (
	"sync"
	"time"
)

// Event types.
const (
	TypeRun      = "run"      // a run's status changed
	TypeJob      = "job"      // a job's status changed
	TypeAction   = "action"   // an action's status changed
	TypeApproval = "approval" // a job waits for approval, or was decided
	TypeTrigger  = "trigger"  // a trigger fired (its record was written)
	TypePlugin   = "plugin"   // a plugin's state changed
	// TypeOverflow tells a subscriber it fell behind and is dropped.
	TypeOverflow = "overflow"
)

// Event is one thing that happened.
type Event struct {
	// Seq numbers events in the order the bus saw them, from 1.
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Type      string    `json:"type"`
	Namespace string    `json:"namespace,omitempty"`
	Pipeline  string    `json:"pipeline,omitempty"`
	Run       string    `json:"run,omitempty"`
	Job       string    `json:"job,omitempty"`
	Action    string    `json:"action,omitempty"`
	Trigger   string    `json:"trigger,omitempty"`
	Plugin    string    `json:"plugin,omitempty"`
	// Status is the new status (or plugin state, or trigger outcome).
	Status string `json:"status,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Filter selects events. Empty fields match everything.
type Filter struct {
	Namespace string
	Pipeline  string
	// Types, when not empty, are the event types wanted.
	Types []string
}

// Match reports whether e passes the filter. Plugin events have no
// namespace and pass namespace and pipeline filters only when none is set.
func (f Filter) Match(e Event) bool {
	if e.Type == TypeOverflow {
		return true
	}
	if f.Namespace != "" && e.Namespace != f.Namespace {
		return false
	}
	if f.Pipeline != "" && e.Pipeline != f.Pipeline {
		return false
	}
	if len(f.Types) == 0 {
		return true
	}
	for _, t := range f.Types {
		if t == e.Type {
			return true
		}
	}
	return false
}

// Backlog is how many recent events the bus keeps for reconnecting
// subscribers.
const Backlog = 1024

// Bus fans events out to subscribers. The zero value is ready to use.
type Bus struct {
	mu     sync.Mutex
	seq    uint64
	recent []Event
	subs   map[*Subscription]struct{}
}

// Subscription receives events until it is closed.
type Subscription struct {
	// C delivers the events. It is closed when the subscription ends
	// (Close, or overflow after a TypeOverflow event).
	C      chan Event
	bus    *Bus
	filter Filter
	closed bool
}

// Publish numbers e, stamps its time when unset, and delivers it.
func (b *Bus) Publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	e.Seq = b.seq
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	b.recent = append(b.recent, e)
	if len(b.recent) > Backlog {
		b.recent = append(b.recent[:0], b.recent[len(b.recent)-Backlog:]...)
	}
	for s := range b.subs {
		if !s.filter.Match(e) {
			continue
		}
		select {
		case s.C <- e:
		default:
			b.overflowLocked(s)
		}
	}
}

func (b *Bus) overflowLocked(s *Subscription) {
	// Make room for the overflow notice: the subscriber reads it last.
	select {
	case <-s.C:
	default:
	}
	s.C <- Event{Seq: b.seq, Time: time.Now().UTC(), Type: TypeOverflow, Reason: "the subscriber fell behind; reconnect with the last seq seen"}
	b.closeLocked(s)
}

// Subscribe returns a subscription to the events matching f. With replay,
// the kept events numbered after after are delivered first. buffer is how
// many events may wait for the subscriber (at least 16).
func (b *Bus) Subscribe(f Filter, replay bool, after uint64, buffer int) *Subscription {
	buffer = max(buffer, 16)
	b.mu.Lock()
	defer b.mu.Unlock()
	var missed []Event
	if replay {
		for _, e := range b.recent {
			if e.Seq > after && f.Match(e) {
				missed = append(missed, e)
			}
		}
	}
	s := &Subscription{C: make(chan Event, buffer+len(missed)), bus: b, filter: f}
	for _, e := range missed {
		s.C <- e
	}
	if b.subs == nil {
		b.subs = map[*Subscription]struct{}{}
	}
	b.subs[s] = struct{}{}
	return s
}

// Close ends the subscription and closes C.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	s.bus.closeLocked(s)
}

func (b *Bus) closeLocked(s *Subscription) {
	if s.closed {
		return
	}
	s.closed = true
	delete(b.subs, s)
	close(s.C)
}

// Subscribers returns how many subscriptions are open.
func (b *Bus) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}
