package orchestrator

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// maxLogBytes bounds what one action's log keeps; beyond it the oldest
// lines are dropped and the log says so.
const maxLogBytes = 16 << 20

// actionLog collects one action's log while it runs. Each line is
// "<RFC3339 time> <stream> <text>".
type actionLog struct {
	// mask hides secret values in each line before it is kept.
	mask    func(string) string
	mu      sync.Mutex
	buf     bytes.Buffer
	dropped int
	// subs are the live followers; ended is set once the action's log is
	// complete (and saved), after which nothing is appended.
	subs  map[*logSub]struct{}
	ended bool
}

// maxFollowerBacklog bounds the lines waiting for one follower; a follower
// that falls further behind is told how many lines it missed.
const maxFollowerBacklog = 64 << 10

// logSub is one live follower of an action's log. Lines are queued under
// the log's lock, in the order they were appended, so a follower attached
// with attach gets every line after its snapshot exactly once.
type logSub struct {
	mu      sync.Mutex
	pending []string
	missed  int
	done    bool
	notify  chan struct{}
}

func (s *logSub) push(line string) {
	s.mu.Lock()
	if len(s.pending) >= maxFollowerBacklog {
		s.missed++
	} else {
		s.pending = append(s.pending, line)
	}
	s.mu.Unlock()
	s.wake()
}

func (s *logSub) finish() {
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	s.wake()
}

func (s *logSub) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// take returns the queued lines, how many were missed since the last take,
// and whether the log is complete: then the lines returned are the last
// ones, and nothing more will come (nor any wake-up: finish's may have
// been merged with a push's).
func (s *logSub) take() (lines []string, missed int, done bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lines, s.pending = s.pending, nil
	missed, s.missed = s.missed, 0
	return lines, missed, s.done
}

func newActionLog(mask func(string) string) *actionLog {
	if mask == nil {
		mask = func(s string) string { return s }
	}
	return &actionLog{mask: mask}
}

// line appends one line.
func (l *actionLog) line(stream, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.appendLocked(stream, text)
}

func (l *actionLog) appendLocked(stream, text string) {
	if l.ended {
		return
	}
	line := time.Now().UTC().Format(time.RFC3339Nano) + " " + stream + " " + l.mask(strings.TrimRight(text, "\r\n"))
	l.buf.WriteString(line)
	l.buf.WriteByte('\n')
	for s := range l.subs {
		s.push(line)
	}
	if l.buf.Len() > maxLogBytes {
		b := l.buf.Bytes()
		cut := bytes.IndexByte(b[len(b)-maxLogBytes/2:], '\n')
		drop := len(b) - maxLogBytes/2 + cut + 1
		l.dropped += bytes.Count(b[:drop], []byte{'\n'})
		rest := append([]byte(nil), b[drop:]...)
		l.buf.Reset()
		l.buf.Write(rest)
	}
}

// reader returns what the log holds now.
func (l *actionLog) reader() io.ReadCloser {
	l.mu.Lock()
	defer l.mu.Unlock()
	return io.NopCloser(l.snapshotLocked())
}

// attach returns what the log holds now and a follower that receives every
// line appended after it; both are taken under one lock, so no line is
// missed or seen twice. detach must be called when the follower is done.
func (l *actionLog) attach() (*bytes.Buffer, *logSub) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &logSub{notify: make(chan struct{}, 1)}
	if l.ended {
		s.done = true
	} else {
		if l.subs == nil {
			l.subs = map[*logSub]struct{}{}
		}
		l.subs[s] = struct{}{}
	}
	return l.snapshotLocked(), s
}

func (l *actionLog) detach(s *logSub) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.subs, s)
}

// end marks the log complete: followers get what is queued and then the
// end.
func (l *actionLog) end() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ended = true
	for s := range l.subs {
		s.finish()
	}
	l.subs = nil
}

func (l *actionLog) snapshotLocked() *bytes.Buffer {
	var b bytes.Buffer
	if l.dropped > 0 {
		fmt.Fprintf(&b, "%s system [%d earlier lines dropped: the log is limited to %d MiB]\n", time.Now().UTC().Format(time.RFC3339Nano), l.dropped, maxLogBytes>>20)
	}
	b.Write(l.buf.Bytes())
	return &b
}

// logs holds the logs of the actions running in this process.
type logs struct {
	mu   sync.Mutex
	live map[string]*actionLog
}

func logKey(ns, run, job, action string) string { return ns + "/" + run + "/" + job + "/" + action }

func (ls *logs) open(key string, mask func(string) string) *actionLog {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.live == nil {
		ls.live = map[string]*actionLog{}
	}
	l := newActionLog(mask)
	ls.live[key] = l
	return l
}

func (ls *logs) get(key string) *actionLog {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.live[key]
}

// close forgets a log once it is saved to storage, ending its followers:
// from now on the log is read from storage.
func (ls *logs) close(key string) {
	ls.mu.Lock()
	l := ls.live[key]
	delete(ls.live, key)
	ls.mu.Unlock()
	if l != nil {
		l.end()
	}
}

// storageLogKey is where an action's log is kept in run storage.
func storageLogKey(job, action string) string { return "logs/" + job + "/" + action + ".log" }
