package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

// An action's log is written to run storage as it is produced, in numbered
// chunks of about logChunkBytes, each ending at a line's end. In memory an
// action keeps only the chunk being filled and at most maxPendingChunks
// chunks on their way to storage, whatever the size of its output; a
// follower reads the chunks already stored from storage, and the rest from
// memory.
const (
	// DefaultMaxLogBytes is how much of one action's log is stored when
	// Options.MaxLogBytes is zero.
	DefaultMaxLogBytes = 100 << 20
	// logChunkBytes is the size past which a chunk is sealed and stored.
	logChunkBytes = 1 << 20
	// maxPendingChunks bounds the sealed chunks not stored yet: when
	// storage is slower than the action's output, the action waits.
	maxPendingChunks = 2
	// maxLogLine is the longest text of one log line, in bytes; a longer
	// line is split, each piece after the first with its stream marked as
	// a continuation (continued).
	maxLogLine = 64 << 10
	// continued ends the stream of a line that continues the line before:
	// "stdout+" is the rest of a long stdout line.
	continued = "+"
	// liveFlush is how often the chunk being filled is stored while it
	// grows, so that a follower on another server (which reads the log
	// from storage) gets each line within about this much of it being
	// written. The same object is stored again as it grows, until it
	// reaches liveSealBytes: then it is sealed and the next chunk starts,
	// so that each rewrite stays small (at most liveSealBytes a second
	// per running action).
	liveFlush     = time.Second
	liveSealBytes = 64 << 10
)

// logStore keeps the chunks of one action's log.
type logStore interface {
	// put stores chunk i.
	put(ctx context.Context, i int, data []byte) error
	// get opens chunk i, or returns sdk.ErrNotFound.
	get(ctx context.Context, i int) (io.ReadCloser, error)
	// clear removes the chunks of an earlier attempt of the action.
	clear(ctx context.Context) error
}

// logPos is a place in an action's log: a chunk, and an offset in it.
type logPos struct{ chunk, off int }

// actionLog is one action's log while it runs. Each line is
// "<RFC3339 time> <stream> <text>".
type actionLog struct {
	// mask hides secret values in each line before it is kept.
	mask func(string) string
	// limit bounds the bytes stored (negative: no bound).
	limit int64
	store logStore
	// report is told what could not be stored.
	report func(error)

	mu   sync.Mutex
	cond sync.Cond // on mu: a chunk was stored, sealed, or the log ended
	// Chunks [0, base) are stored; pending holds chunks base, base+1...
	// sealed and not stored yet; cur is chunk base+len(pending), being
	// filled. Sealed chunks are never written again, and cur only grows,
	// so a follower may read them outside the lock.
	base    int
	pending [][]byte
	cur     []byte
	// kept counts the bytes stored under the limit; past it, dropped
	// counts the bytes of the lines not stored.
	kept      int64
	truncated bool
	dropped   int64
	// ended is set once the last line is written; stored is closed once
	// every chunk has been stored.
	ended  bool
	stored chan struct{}
	// waiters are the live followers' wake-ups.
	waiters map[chan struct{}]struct{}
	// curStored is how much of cur storage holds (liveFlush); flushDue is
	// set each liveFlush, to store cur if it grew.
	curStored int
	flushDue  bool
}

// newActionLog returns a log that writes its chunks to st and starts its
// writer.
func newActionLog(mask func(string) string, limit int64, st logStore, report func(error)) *actionLog {
	if mask == nil {
		mask = func(s string) string { return s }
	}
	if report == nil {
		report = func(error) {}
	}
	if limit == 0 {
		limit = DefaultMaxLogBytes
	}
	l := &actionLog{mask: mask, limit: limit, store: st, report: report, stored: make(chan struct{})}
	l.cond.L = &l.mu
	go l.write()
	go l.flushTicker()
	return l
}

// flushTicker asks the writer to store the chunk being filled every
// liveFlush, until the log is stored.
func (l *actionLog) flushTicker() {
	t := time.NewTicker(liveFlush)
	defer t.Stop()
	for {
		select {
		case <-l.stored:
			return
		case <-t.C:
		}
		l.mu.Lock()
		l.flushDue = true
		l.cond.Broadcast()
		l.mu.Unlock()
	}
}

// line appends one line of text, masked, and split in pieces of at most
// maxLogLine bytes. Masking comes before the split, so a secret within
// one line given here is always masked.
func (l *actionLog) line(stream, text string) {
	text = l.mask(strings.TrimRight(text, "\r\n"))
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	l.mu.Lock()
	defer l.mu.Unlock()
	for first := true; ; first = false {
		piece := text
		if len(piece) > maxLogLine {
			cut := maxLogLine
			for cut > maxLogLine-utf8.UTFMax && !utf8.RuneStart(text[cut]) {
				cut--
			}
			piece = text[:cut]
		}
		s := stream
		if !first && !strings.HasSuffix(s, continued) {
			s += continued
		}
		l.appendLocked(ts, s, piece)
		text = text[len(piece):]
		if text == "" {
			return
		}
	}
}

func (l *actionLog) appendLocked(ts, stream, text string) {
	if l.ended {
		return
	}
	if l.truncated {
		l.dropped += int64(len(text)) + 1
		return
	}
	n := int64(len(ts) + len(stream) + len(text) + 3)
	if l.limit >= 0 && l.kept+n > l.limit {
		l.truncated = true
		l.dropped += int64(len(text)) + 1
		l.writeLocked(ts + " system " + fmt.Sprintf("[log truncated: this action's log reached the %s limit; what it writes from now on is not stored]", sizeText(l.limit)))
		return
	}
	l.kept += n
	l.writeLocked(ts + " " + stream + " " + text)
}

// writeLocked adds a line to the chunk being filled, and seals the chunk
// once it is full, waiting while too many sealed chunks are not stored.
func (l *actionLog) writeLocked(line string) {
	for len(l.pending) >= maxPendingChunks {
		l.cond.Wait()
	}
	l.cur = append(l.cur, line...)
	l.cur = append(l.cur, '\n')
	if len(l.cur) >= logChunkBytes {
		l.sealLocked()
	}
	l.wakeLocked()
}

func (l *actionLog) sealLocked() {
	if len(l.cur) == 0 {
		return
	}
	l.pending = append(l.pending, l.cur)
	l.cur = nil
	l.curStored = 0
	l.cond.Broadcast()
}

// growing reports whether the chunk being filled has lines storage does
// not hold, and it is time to store them (liveFlush).
func (l *actionLog) growingLocked() bool {
	return l.flushDue && len(l.cur) > l.curStored
}

func (l *actionLog) wakeLocked() {
	for w := range l.waiters {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// write stores the sealed chunks in order, until the log has ended and
// every chunk is stored.
func (l *actionLog) write() {
	defer close(l.stored)
	if err := l.store.clear(context.Background()); err != nil {
		l.report(fmt.Errorf("remove the log of an earlier attempt: %w", err))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		for len(l.pending) == 0 && !l.ended && !l.growingLocked() {
			l.cond.Wait()
		}
		if len(l.pending) == 0 && !l.ended {
			// The chunk being filled grew: store what it holds, or seal
			// it once it is large enough that storing it again each
			// second would cost more than a chunk of its own.
			l.flushDue = false
			if len(l.cur) >= liveSealBytes {
				l.sealLocked()
				continue
			}
			i, part := l.base, l.cur[:len(l.cur):len(l.cur)] // cur only grows: part is never written again
			l.mu.Unlock()
			err := putChunk(l.store, i, part)
			l.mu.Lock()
			if err == nil && l.base == i && len(l.pending) == 0 && len(l.cur) >= len(part) {
				l.curStored = len(part)
			}
			continue
		}
		if len(l.pending) == 0 {
			return
		}
		i, chunk := l.base, l.pending[0]
		l.mu.Unlock()
		err := putChunk(l.store, i, chunk)
		l.mu.Lock()
		l.pending[0] = nil
		l.pending = l.pending[1:]
		l.base++
		if err != nil {
			l.report(fmt.Errorf("store chunk %d of the log: %w", i, err))
			if !l.ended {
				// Not counted against the limit: it says what is missing.
				l.cur = fmt.Appendf(l.cur, "%s system [log incomplete: %d bytes of this action's log could not be stored: %v]\n", time.Now().UTC().Format(time.RFC3339Nano), len(chunk), err)
			}
		}
		l.cond.Broadcast()
		l.wakeLocked()
	}
}

// putChunk stores a chunk, trying again after a failure.
func putChunk(st logStore, i int, chunk []byte) error {
	var err error
	for attempt, wait := 0, 100*time.Millisecond; attempt < 3; attempt, wait = attempt+1, wait*10 {
		if attempt > 0 {
			time.Sleep(wait)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err = st.put(ctx, i, chunk)
		cancel()
		if err == nil {
			return nil
		}
	}
	return err
}

// finish ends the log: it adds the truncation line if the limit was
// reached, stores what is left and waits until every chunk is stored.
// Followers then get the rest of the log and its end.
func (l *actionLog) finish() {
	l.mu.Lock()
	if !l.ended {
		if l.truncated {
			l.writeLocked(fmt.Sprintf("%s system [log truncated: this action's log reached the %s limit; %d more bytes were not stored]", time.Now().UTC().Format(time.RFC3339Nano), sizeText(l.limit), l.dropped))
		}
		l.sealLocked()
		l.ended = true
		l.cond.Broadcast()
		l.wakeLocked()
	}
	l.mu.Unlock()
	<-l.stored
}

// next returns the part of the log that follows pos and the place after
// it. When that part is stored, fromStore is set and data is nil: the
// caller reads chunk pos.chunk from storage, from pos.off. done is set
// when the log has ended and nothing follows pos.
func (l *actionLog) next(pos logPos) (data []byte, after logPos, fromStore, done bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if pos.chunk < l.base {
		return nil, logPos{chunk: pos.chunk + 1}, true, false
	}
	if i := pos.chunk - l.base; i < len(l.pending) {
		return l.pending[i][pos.off:], logPos{chunk: pos.chunk + 1}, false, false
	}
	data = l.cur[pos.off:len(l.cur):len(l.cur)]
	return data, logPos{chunk: pos.chunk, off: len(l.cur)}, false, len(data) == 0 && l.ended
}

// watch returns a channel that receives a value (coalesced) whenever the
// log changes, and a function to stop watching.
func (l *actionLog) watch() (<-chan struct{}, func()) {
	w := make(chan struct{}, 1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.waiters == nil {
		l.waiters = map[chan struct{}]struct{}{}
	}
	l.waiters[w] = struct{}{}
	return w, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(l.waiters, w)
	}
}

// reader returns the log from its start to what it holds now.
func (l *actionLog) reader(ctx context.Context) *liveLogReader {
	return &liveLogReader{l: l, ctx: ctx}
}

// liveLogReader reads an action's log from pos up to what it holds when
// the reader gets there: stored chunks from storage, the rest from memory.
type liveLogReader struct {
	l   *actionLog
	ctx context.Context
	pos logPos
	// done is set when the reader reached the end of an ended log.
	done bool
	buf  []byte
	rc   io.ReadCloser
	skip int
}

func (r *liveLogReader) Read(p []byte) (int, error) {
	for {
		if len(r.buf) > 0 {
			n := copy(p, r.buf)
			r.buf = r.buf[n:]
			return n, nil
		}
		if r.rc != nil {
			if r.skip > 0 {
				n, err := io.CopyN(io.Discard, r.rc, int64(r.skip))
				r.skip -= int(n)
				if err != nil && !errors.Is(err, io.EOF) {
					return 0, err
				}
				if err != nil {
					r.skip = 0
				}
			}
			n, err := r.rc.Read(p)
			if errors.Is(err, io.EOF) {
				r.rc.Close()
				r.rc = nil
				err = nil
			}
			if n > 0 || err != nil {
				return n, err
			}
			continue
		}
		data, after, fromStore, done := r.l.next(r.pos)
		switch {
		case fromStore:
			rc, err := r.l.store.get(r.ctx, r.pos.chunk)
			switch {
			case errors.Is(err, sdk.ErrNotFound):
				// A chunk that could not be stored: the log says so.
			case err != nil:
				return 0, fmt.Errorf("read chunk %d of the log: %w", r.pos.chunk, err)
			default:
				r.rc, r.skip = rc, r.pos.off
			}
			r.pos = after
		case len(data) > 0:
			r.buf, r.pos = data, after
		default:
			r.done = done
			return 0, io.EOF
		}
	}
}

func (r *liveLogReader) Close() error {
	if r.rc != nil {
		r.rc.Close()
		r.rc = nil
	}
	return nil
}

// sizeText says a size in MiB when it is a whole number of them.
func sizeText(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d-byte", n)
}

// logs holds the logs of the actions running in this process.
type logs struct {
	mu   sync.Mutex
	live map[string]*actionLog
}

func logKey(ns, run, job, action string) string { return ns + "/" + run + "/" + job + "/" + action }

func (ls *logs) open(key string, l *actionLog) *actionLog {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.live == nil {
		ls.live = map[string]*actionLog{}
	}
	ls.live[key] = l
	return l
}

func (ls *logs) get(key string) *actionLog {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.live[key]
}

// close forgets a log once it is saved to storage, ending it if it was
// not: from now on the log is read from storage.
func (ls *logs) close(key string) {
	ls.mu.Lock()
	l := ls.live[key]
	delete(ls.live, key)
	ls.mu.Unlock()
	if l != nil {
		l.finish()
	}
}
