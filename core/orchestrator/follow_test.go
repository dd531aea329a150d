package orchestrator

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palvella/palvella/core/api/wire"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// memChunks is a logStore in memory. Puts wait while hold is set, and
// check that the log keeps at most maxPendingChunks sealed chunks.
type memChunks struct {
	t      *testing.T
	l      *actionLog
	mu     sync.Mutex
	chunks map[int][]byte
	held   bool
	cond   *sync.Cond
	puts   int
}

func newMemChunks(t *testing.T) *memChunks {
	m := &memChunks{t: t, chunks: map[int][]byte{}}
	m.cond = sync.NewCond(&m.mu)
	return m
}

func (m *memChunks) hold(on bool) {
	m.mu.Lock()
	m.held = on
	m.mu.Unlock()
	m.cond.Broadcast()
}

func (m *memChunks) put(_ context.Context, i int, data []byte) error {
	if m.l != nil {
		m.l.mu.Lock()
		if n := len(m.l.pending); n > maxPendingChunks {
			m.t.Errorf("%d chunks wait to be stored", n)
		}
		m.l.mu.Unlock()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.held {
		m.cond.Wait()
	}
	m.chunks[i] = bytes.Clone(data)
	m.puts++
	return nil
}

func (m *memChunks) get(_ context.Context, i int) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.chunks[i]
	if !ok {
		return nil, sdk.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (m *memChunks) clear(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.chunks)
	return nil
}

// stored returns the stored chunks in order; they must be numbered from 0
// without gaps.
func (m *memChunks) stored() [][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([][]byte, len(m.chunks))
	for i := range out {
		b, ok := m.chunks[i]
		if !ok {
			m.t.Fatalf("chunk %d of %d is missing", i, len(m.chunks))
		}
		out[i] = b
	}
	return out
}

func testLog(t *testing.T, mask func(string) string, limit int64) (*actionLog, *memChunks) {
	st := newMemChunks(t)
	l := newActionLog(mask, limit, st, func(err error) { t.Errorf("store: %v", err) })
	st.l = l
	return l, st
}

// texts returns the text of stored lines "<time> <stream> <text>".
func texts(t *testing.T, log []byte) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(strings.TrimSuffix(string(log), "\n"), "\n") {
		parts := strings.SplitN(line, " ", 3)
		if len(parts) != 3 {
			t.Fatalf("bad line %q", line)
		}
		out = append(out, parts[2])
	}
	return out
}

// Chunks end at a line's end, are about logChunkBytes, and together are
// the whole log in order.
func TestLogChunkBoundaries(t *testing.T) {
	l, st := testLog(t, nil, -1)
	var want []string
	for i := range 60000 {
		// Lines of 1 to about 300 bytes, so chunk ends fall anywhere.
		s := fmt.Sprintf("line %d %s", i, strings.Repeat("x", (i*37)%300))
		want = append(want, s)
		l.line("stdout", s)
	}
	l.finish()
	chunks := st.stored()
	if len(chunks) < 5 {
		t.Fatalf("%d chunks, want several", len(chunks))
	}
	var all []byte
	for i, c := range chunks {
		if c[len(c)-1] != '\n' {
			t.Errorf("chunk %d does not end at a line's end", i)
		}
		if len(c) > logChunkBytes+maxLogLine+100 || (i < len(chunks)-1 && len(c) < logChunkBytes) {
			t.Errorf("chunk %d has %d bytes", i, len(c))
		}
		all = append(all, c...)
	}
	got := texts(t, all)
	if len(got) != len(want) {
		t.Fatalf("%d lines stored, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("line %d is %q, want %q", i, got[i], want[i])
		}
	}
	// The reader of the ended log reads the same, from the store.
	var b bytes.Buffer
	if _, err := io.Copy(&b, l.reader(context.Background())); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), all) {
		t.Error("the reader of the ended log differs from the stored chunks")
	}
}

// follow follows l to its end as the API does, and returns the texts.
func follow(t *testing.T, l *actionLog) []string {
	var got []string
	err := (&Orchestrator{}).followLive(context.Background(), l, "j", "a", func(lines []wire.LogLine) error {
		for _, ln := range lines {
			parts := strings.SplitN(ln.Line, " ", 3)
			got = append(got, parts[2])
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	return got
}

// Followers attached at any point (chunks stored, a chunk waiting to be
// stored, within the chunk being filled, after the end) get every line
// exactly once, in order.
func TestLogFollowerAttachedBetweenChunks(t *testing.T) {
	l, st := testLog(t, nil, -1)
	const n = 150000
	line := func(i int) string { return fmt.Sprintf("line %d %s", i, strings.Repeat("y", i%50)) }
	var followers sync.WaitGroup
	results := make(chan []string, 16)
	attach := func() {
		followers.Add(1)
		go func() {
			defer followers.Done()
			results <- follow(t, l)
		}()
	}
	attach() // from the start
	st.hold(true)
	held := true
	for i := range n {
		l.line("stdout", line(i))
		l.mu.Lock()
		pending, base := len(l.pending), l.base
		l.mu.Unlock()
		if held && pending == 1 {
			// Storage is held: a chunk waits in memory.
			if base != 0 {
				t.Fatalf("%d chunks stored while storage was held", base)
			}
			attach()
			st.hold(false)
			held = false
		}
		if i == n/2 || i == n/2+1 || i == 2*n/3 {
			attach()
		}
	}
	if held {
		t.Fatal("no chunk was sealed")
	}
	l.mu.Lock()
	stored := l.base
	l.mu.Unlock()
	if stored == 0 {
		t.Fatal("no chunk was stored while the log was written")
	}
	attach()
	l.finish()
	attach() // after the end
	followers.Wait()
	close(results)
	count := 0
	for got := range results {
		count++
		if len(got) != n {
			t.Errorf("a follower got %d lines, want %d", len(got), n)
			continue
		}
		for i, s := range got {
			if s != line(i) {
				t.Errorf("a follower's line %d is %q", i, s)
				break
			}
		}
	}
	if count != 7 {
		t.Errorf("%d followers ended, want 7", count)
	}
}

// A follower that reads slowly does not hold the log up, and gets
// everything from storage: nothing is missed.
func TestSlowFollowerMissesNothing(t *testing.T) {
	l, _ := testLog(t, nil, -1)
	const n = 100000
	done := make(chan []string)
	go func() {
		var got []string
		_ = (&Orchestrator{}).followLive(context.Background(), l, "j", "a", func(lines []wire.LogLine) error {
			if len(got) == 0 {
				time.Sleep(200 * time.Millisecond) // the writer runs far ahead
			}
			for _, ln := range lines {
				got = append(got, strings.SplitN(ln.Line, " ", 3)[2])
			}
			return nil
		})
		done <- got
	}()
	for i := range n {
		l.line("stderr", fmt.Sprint(i))
	}
	l.finish()
	got := <-done
	if len(got) != n {
		t.Fatalf("got %d lines, want %d", len(got), n)
	}
	for i, s := range got {
		if s != fmt.Sprint(i) {
			t.Fatalf("line %d is %q", i, s)
		}
	}
}

// A long line is masked whole, then split in pieces of maxLogLine bytes,
// the pieces after the first marked as continuations.
func TestLongLineIsMaskedThenSplit(t *testing.T) {
	secret := "s3cr3t-value"
	mask := func(s string) string { return strings.ReplaceAll(s, secret, "********") }
	l, st := testLog(t, mask, -1)
	// The secret straddles the first split.
	long := strings.Repeat("a", maxLogLine-5) + secret + strings.Repeat("b", 2*maxLogLine)
	l.line("stdout", long)
	l.line("stdout", "after")
	l.finish()
	var all []byte
	for _, c := range st.stored() {
		all = append(all, c...)
	}
	if bytes.Contains(all, []byte(secret)) {
		t.Fatal("the secret is in the stored log")
	}
	lines := strings.Split(strings.TrimSuffix(string(all), "\n"), "\n")
	pieces := (len(mask(long)) + maxLogLine - 1) / maxLogLine
	if len(lines) != pieces+1 {
		t.Fatalf("%d lines, want %d pieces and a line", len(lines), pieces)
	}
	var joined string
	for i, ln := range lines[:pieces] {
		parts := strings.SplitN(ln, " ", 3)
		wantStream := "stdout+"
		if i == 0 {
			wantStream = "stdout"
		}
		if parts[1] != wantStream || len(parts[2]) > maxLogLine {
			t.Errorf("piece %d: stream %q, %d bytes", i, parts[1], len(parts[2]))
		}
		joined += parts[2]
	}
	if joined != mask(long) {
		t.Error("the pieces do not join into the masked line")
	}
	if !strings.HasSuffix(lines[pieces], " stdout after") {
		t.Errorf("last line %q", lines[pieces])
	}
}

// Past the limit nothing more is stored; the log says so at that point and
// at its end, with the bytes not stored.
func TestLogLimitEndsWithMarker(t *testing.T) {
	const limit = 64 << 10
	l, st := testLog(t, nil, limit)
	var written int64
	for i := range 10000 {
		s := fmt.Sprintf("line %d", i)
		written += int64(len(s)) + 1
		l.line("stdout", s)
	}
	l.finish()
	var all []byte
	for _, c := range st.stored() {
		all = append(all, c...)
	}
	if len(all) > limit+1024 {
		t.Errorf("%d bytes stored, limit %d", len(all), limit)
	}
	lines := strings.Split(strings.TrimSuffix(string(all), "\n"), "\n")
	var keptText int64
	for _, ln := range lines[:len(lines)-2] {
		keptText += int64(len(strings.SplitN(ln, " ", 3)[2])) + 1
	}
	last := lines[len(lines)-1]
	want := fmt.Sprintf("system [log truncated: this action's log reached the 65536-byte limit; %d more bytes were not stored]", written-keptText)
	if !strings.HasSuffix(last, want) {
		t.Errorf("last line %q, want it to end with %q", last, want)
	}
	if !strings.Contains(lines[len(lines)-2], "system [log truncated: this action's log reached the 65536-byte limit; what it writes from now on is not stored]") {
		t.Errorf("line before last %q", lines[len(lines)-2])
	}
}

// A new attempt of an action replaces the chunks of the earlier one.
func TestLogReplacesEarlierAttempt(t *testing.T) {
	st := newMemChunks(t)
	for i := range 5 {
		st.chunks[i] = []byte("old\n")
	}
	l := newActionLog(nil, -1, st, nil)
	l.line("stdout", "new")
	l.finish()
	chunks := st.stored()
	if len(chunks) != 1 || !strings.HasSuffix(string(chunks[0]), " stdout new\n") {
		t.Errorf("stored %q", chunks)
	}
}

func TestSizeText(t *testing.T) {
	for n, want := range map[int64]string{100 << 20: "100 MiB", 1 << 20: "1 MiB", 4096: "4096-byte", 3<<20 + 1: "3145729-byte"} {
		if got := sizeText(n); got != want {
			t.Errorf("sizeText(%d) = %q, want %q", n, got, want)
		}
	}
}
