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
	fmt.Fprintf(&l.buf, "%s %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), stream, l.mask(strings.TrimRight(text, "\r\n")))
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
	var b bytes.Buffer
	if l.dropped > 0 {
		fmt.Fprintf(&b, "%s system [%d earlier lines dropped: the log is limited to %d MiB]\n", time.Now().UTC().Format(time.RFC3339Nano), l.dropped, maxLogBytes>>20)
	}
	b.Write(l.buf.Bytes())
	return io.NopCloser(&b)
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

func (ls *logs) close(key string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	delete(ls.live, key)
}

// storageLogKey is where an action's log is kept in run storage.
func storageLogKey(job, action string) string { return "logs/" + job + "/" + action + ".log" }
