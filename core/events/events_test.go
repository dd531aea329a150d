package events

import "testing"

func TestFilterAndOrder(t *testing.T) {
	var b Bus
	s := b.Subscribe(Filter{Namespace: "default", Pipeline: "ci"}, false, 0, 16)
	defer s.Close()
	b.Publish(Event{Type: TypeRun, Namespace: "default", Pipeline: "ci", Run: "ci-1", Status: "running"})
	b.Publish(Event{Type: TypeRun, Namespace: "default", Pipeline: "deploy", Run: "deploy-1"})
	b.Publish(Event{Type: TypeRun, Namespace: "other", Pipeline: "ci", Run: "ci-1"})
	b.Publish(Event{Type: TypeJob, Namespace: "default", Pipeline: "ci", Run: "ci-1", Job: "build"})
	got := []Event{<-s.C, <-s.C}
	if got[0].Run != "ci-1" || got[0].Type != TypeRun || got[1].Job != "build" {
		t.Fatalf("got %+v", got)
	}
	if got[0].Seq != 1 || got[1].Seq != 4 {
		t.Fatalf("seqs %d %d, want 1 and 4", got[0].Seq, got[1].Seq)
	}
	select {
	case e := <-s.C:
		t.Fatalf("unexpected event %+v", e)
	default:
	}
}

func TestResumeAfterSeq(t *testing.T) {
	var b Bus
	for i := 0; i < 5; i++ {
		b.Publish(Event{Type: TypeRun, Namespace: "default"})
	}
	s := b.Subscribe(Filter{}, true, 3, 16)
	defer s.Close()
	if e := <-s.C; e.Seq != 4 {
		t.Fatalf("first event after 3 is %d", e.Seq)
	}
	if e := <-s.C; e.Seq != 5 {
		t.Fatalf("second event after 3 is %d", e.Seq)
	}
}

func TestSlowSubscriberIsDroppedWithNotice(t *testing.T) {
	var b Bus
	s := b.Subscribe(Filter{}, false, 0, 16)
	for i := 0; i < 100; i++ {
		b.Publish(Event{Type: TypeRun})
	}
	var last Event
	n := 0
	for e := range s.C {
		last = e
		n++
	}
	if last.Type != TypeOverflow {
		t.Fatalf("last event %+v, want an overflow notice", last)
	}
	if n > 17 {
		t.Fatalf("%d events delivered to a 16-slot subscriber", n)
	}
	if b.Subscribers() != 0 {
		t.Fatalf("the dropped subscriber is still subscribed")
	}
}
