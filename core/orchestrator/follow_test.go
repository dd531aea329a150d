package orchestrator

import (
	"bufio"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// A follower attached while lines are being written gets each line once,
// in order: the snapshot and the subscription are taken under one lock.
func TestLogFollowerAttachedMidWayGetsEveryLineOnce(t *testing.T) {
	const n = 20000
	l := newActionLog(nil)
	var wg sync.WaitGroup
	half := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= n; i++ {
			l.line("stdout", fmt.Sprintf("line %d", i))
			if i == n/4 {
				close(half)
			}
		}
		l.end()
	}()
	<-half
	var followers sync.WaitGroup
	for f := 0; f < 4; f++ {
		followers.Add(1)
		go func() {
			defer followers.Done()
			snap, sub := l.attach()
			defer l.detach(sub)
			var got []string
			sc := bufio.NewScanner(snap)
			for sc.Scan() {
				got = append(got, sc.Text())
			}
			for {
				lines, missed, done := sub.take()
				if missed > 0 {
					t.Errorf("missed %d lines", missed)
				}
				got = append(got, lines...)
				if done {
					break
				}
				<-sub.notify
			}
			if len(got) != n {
				t.Errorf("follower got %d lines, want %d", len(got), n)
				return
			}
			for i, s := range got {
				if want := fmt.Sprintf(" stdout line %d", i+1); !strings.HasSuffix(s, want) {
					t.Errorf("line %d is %q", i+1, s)
					return
				}
			}
		}()
	}
	followers.Wait()
	wg.Wait()
	// Attaching after the end gets the whole log and the end at once.
	snap, sub := l.attach()
	if c := strings.Count(snap.String(), "\n"); c != n {
		t.Errorf("snapshot after the end has %d lines", c)
	}
	if _, _, done := sub.take(); !done {
		t.Error("a follower of an ended log is not done")
	}
}
