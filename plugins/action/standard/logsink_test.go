package standard

import (
	"strings"
	"testing"
	"unicode/utf8"
)

type lineRecorder struct{ streams, texts []string }

func (r *lineRecorder) Log(stream, text string) error {
	r.streams = append(r.streams, stream)
	r.texts = append(r.texts, text)
	return nil
}

func (r *lineRecorder) Output(string, any) error { return nil }

// A line longer than maxLogLine is sent in pieces that never break a
// character, the pieces after the first marked as continuations.
func TestLongLineIsSplitWithContinuations(t *testing.T) {
	rec := &lineRecorder{}
	s := newLogSink(rec)
	long := "a" + strings.Repeat("é", maxLogLine) // 2-byte characters, odd offset
	for i := 0; i < len(long); i += 1000 {
		s.write("stdout", []byte(long[i:min(i+1000, len(long))]))
	}
	s.write("stdout", []byte("\nnext\n"))
	s.flush()
	n := len(rec.texts)
	if n < 3 || rec.texts[n-1] != "next" || rec.streams[n-1] != "stdout" {
		t.Fatalf("lines %q", rec.streams)
	}
	joined := ""
	for i, text := range rec.texts[:n-1] {
		want := "stdout+"
		if i == 0 {
			want = "stdout"
		}
		if rec.streams[i] != want || len(text) > maxLogLine || !utf8.ValidString(text) || strings.ContainsRune(text, utf8.RuneError) {
			t.Errorf("piece %d: stream %q, %d bytes", i, rec.streams[i], len(text))
		}
		joined += text
	}
	if joined != long {
		t.Error("the pieces do not join into the line")
	}
}

// Output arriving in pieces of exactly maxLogLine bytes is split there,
// and a line that ends where it was split adds no empty piece.
func TestLineOfExactlyMaxLogLine(t *testing.T) {
	rec := &lineRecorder{}
	s := newLogSink(rec)
	s.write("stdout", []byte(strings.Repeat("x", maxLogLine)))
	s.write("stdout", []byte(strings.Repeat("x", maxLogLine)))
	s.write("stdout", []byte("\nnext\n"))
	s.flush()
	if len(rec.texts) != 3 || len(rec.texts[0]) != maxLogLine || len(rec.texts[1]) != maxLogLine || rec.streams[1] != "stdout+" || rec.streams[2] != "stdout" || rec.texts[2] != "next" {
		t.Errorf("streams %q, %d lines", rec.streams, len(rec.texts))
	}
}
