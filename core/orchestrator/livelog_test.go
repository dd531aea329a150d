package orchestrator

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The chunk being filled reaches storage within about liveFlush of its
// lines being written, before the action ends: a follower on another
// server, which reads only storage, sees the lines as they come. A slow
// log is sealed at liveSealBytes, and what is stored in the end is every
// line once, in order.
func TestLiveFlushStoresTheFillingChunk(t *testing.T) {
	l, st := testLog(t, nil, -1)
	l.line("stdout", "first")
	l.line("stdout", "second")
	deadline := time.Now().Add(3 * liveFlush)
	for {
		if chunks := st.snapshot(); len(chunks) == 1 && strings.Count(string(chunks[0]), "\n") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s the two lines written are not in storage: %q", 3*liveFlush, st.snapshot())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Past liveSealBytes, the next flush seals the chunk: chunk 1 starts.
	long := strings.Repeat("x", 1000)
	var want []string
	want = append(want, "first", "second")
	for i := 0; (i+2)*1000 < liveSealBytes+4000; i++ {
		s := fmt.Sprintf("%d %s", i, long)
		l.line("stdout", s)
		want = append(want, s)
	}
	deadline = time.Now().Add(3 * liveFlush)
	for len(st.snapshot()) < 1 || !bytes.HasSuffix(st.snapshot()[0], []byte(want[len(want)-1]+"\n")) {
		if time.Now().After(deadline) {
			t.Fatalf("the lines past %d bytes did not reach storage", liveSealBytes)
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.line("stdout", "after the seal")
	want = append(want, "after the seal")
	deadline = time.Now().Add(3 * liveFlush)
	for len(st.snapshot()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("a chunk of %d bytes or more was not sealed at the flush", liveSealBytes)
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.finish()
	var all []byte
	for _, c := range st.stored() {
		if len(c) > 0 && c[len(c)-1] != '\n' {
			t.Fatalf("a stored chunk does not end at a line's end")
		}
		all = append(all, c...)
	}
	got := texts(t, all)
	if len(got) != len(want) {
		t.Fatalf("stored %d lines, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("line %d = %.20q, want %.20q", i, got[i], want[i])
		}
	}
}

// snapshot returns the chunks stored now, in order, without requiring the
// log to be complete.
func (m *memChunks) snapshot() [][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out [][]byte
	for i := 0; ; i++ {
		b, ok := m.chunks[i]
		if !ok {
			return out
		}
		out = append(out, b)
	}
}
