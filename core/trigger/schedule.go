package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/palvella/palvella/core/resource"
	"github.com/palvella/palvella/core/spec"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
	"github.com/robfig/cron/v3"
)

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// schedule is an interval or cron trigger's timetable.
type schedule struct {
	// desc is the schedule as written, kept in the state to notice edits.
	desc  string
	every time.Duration // interval
	cron  cron.Schedule
}

// scheduleOf reads a trigger's timetable. Intervals shorter than min are
// raised to min.
func scheduleOf(t *spec.Trigger, min time.Duration) (*schedule, error) {
	switch t.Type {
	case spec.TriggerInterval:
		d := t.Every.Value()
		if d <= 0 {
			return nil, sdk.Errorf(sdk.ErrInvalidArgument, "every", "%q is not a duration", t.Every)
		}
		d = max(d, min)
		return &schedule{desc: "every " + d.String(), every: d}, nil
	case spec.TriggerCron:
		tz := t.Timezone
		if tz == "" {
			tz = "UTC"
		}
		loc, err := time.LoadLocation(tz)
		if err != nil {
			return nil, sdk.Errorf(sdk.ErrInvalidArgument, "timezone", "unknown time zone %q", tz)
		}
		sch, err := cronParser.Parse(t.Expression)
		if err != nil {
			return nil, sdk.Errorf(sdk.ErrInvalidArgument, "expression", "invalid cron expression %q: %v", t.Expression, err)
		}
		return &schedule{desc: "cron " + t.Expression + " " + tz, cron: inZone{sch, loc}}, nil
	}
	return nil, sdk.Errorf(sdk.ErrInvalidArgument, "type", "%q is not a schedule trigger", t.Type)
}

// inZone reads a cron schedule in a time zone.
type inZone struct {
	s   cron.Schedule
	loc *time.Location
}

func (z inZone) Next(t time.Time) time.Time { return z.s.Next(t.In(z.loc)).UTC() }

// first is the first due time of a trigger seen at now.
func (s *schedule) first(now time.Time) time.Time {
	if s.cron != nil {
		return s.cron.Next(now)
	}
	return now.Add(s.every)
}

// after is the due time that follows due, seen at now: due times missed
// before now are skipped (they are coalesced into the one being fired).
func (s *schedule) after(due, now time.Time) time.Time {
	if s.cron != nil {
		return s.cron.Next(now)
	}
	next := due.Add(s.every)
	if !next.After(now) {
		// Keep the phase: the next multiple of every after now.
		n := now.Sub(due) / s.every
		next = due.Add((n + 1) * s.every)
	}
	return next
}

// jitter is the most a missed due time is delayed when a server comes
// back.
func (s *schedule) jitter(maxJitter time.Duration) time.Duration {
	j := maxJitter
	if s.every > 0 {
		j = min(j, s.every/10)
	}
	return j
}

// Run checks the interval and cron triggers of every pipeline each tick
// and fires those that are due, and prunes the trigger records past their
// retention or cap, until ctx ends.
func (s *Service) Run(ctx context.Context) {
	go s.pruneLoop(ctx) // retention.go
	t := time.NewTicker(s.opts.Tick)
	defer t.Stop()
	for {
		if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("check schedules", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick fires the schedule triggers that are due now.
func (s *Service) Tick(ctx context.Context) error {
	db, err := s.opts.Database(ctx)
	if err != nil {
		return err
	}
	states := map[string]*resource.TriggerState{}
	if err := eachPage(ctx, db, resource.KindTriggerState, func(r *database.Resource) error {
		st := &resource.TriggerState{}
		if err := decode(r, st); err != nil {
			return err
		}
		states[st.Namespace+"/"+st.Name] = st
		return nil
	}); err != nil {
		return fmt.Errorf("list trigger states: %w", err)
	}
	seen := map[string]schedules{}
	err = eachPage(ctx, db, resource.KindPipeline, func(r *database.Resource) error {
		ns, name := r.Key.Namespace, r.Key.Name
		sc, ok := s.schedules[ns+"/"+name]
		if !ok || sc.revision != r.Revision {
			// Read again only when the pipeline changed: decoding every
			// pipeline's whole specification each tick cost a large
			// pipeline's server milliseconds a second.
			var pl resource.Pipeline
			if err := decode(r, &pl); err != nil {
				return err
			}
			var p spec.Pipeline
			if err := json.Unmarshal(pl.Spec, &p); err != nil {
				s.log.Warn("read a pipeline's triggers", "namespace", pl.Namespace, "pipeline", pl.Name, "error", err)
				return nil
			}
			sc = schedules{revision: r.Revision}
			for _, t := range p.Spec.Triggers {
				if t.Type == spec.TriggerInterval || t.Type == spec.TriggerCron {
					sc.triggers = append(sc.triggers, t)
				}
			}
		}
		seen[ns+"/"+name] = sc
		for i := range sc.triggers {
			t := &sc.triggers[i]
			key := ns + "/" + name + "." + t.Name
			if err := s.check(ctx, ns, name, t, states[key]); err != nil && ctx.Err() == nil {
				s.log.Warn("check a schedule trigger", "namespace", ns, "pipeline", name, "trigger", t.Name, "error", err)
			}
		}
		return nil
	})
	if err == nil {
		s.schedules = seen // pipelines deleted meanwhile are forgotten
	}
	return err
}

// schedules are a pipeline's interval and cron triggers, as of a revision
// of its document.
type schedules struct {
	revision int64
	triggers []spec.Trigger
}

func eachPage(ctx context.Context, db database.Database, kind string, fn func(*database.Resource) error) error {
	token := ""
	for {
		resp, err := db.List(ctx, &database.ListRequest{Kind: kind, PageSize: 500, PageToken: token})
		if err != nil {
			return err
		}
		for i := range resp.Items {
			if err := fn(&resp.Items[i]); err != nil {
				return err
			}
		}
		if resp.NextPageToken == "" {
			return nil
		}
		token = resp.NextPageToken
	}
}

// check fires one schedule trigger if it is due. st is its stored state,
// nil when there is none yet.
func (s *Service) check(ctx context.Context, ns, pipeline string, t *spec.Trigger, st *resource.TriggerState) error {
	sch, err := scheduleOf(t, s.opts.MinInterval)
	if err != nil {
		return err
	}
	now := s.now()
	name := pipeline + "." + t.Name
	if st == nil || st.Schedule != sch.desc {
		// A new trigger, or its schedule changed: its first due time is
		// one period from now.
		next := sch.first(now)
		if st == nil {
			st = &resource.TriggerState{Meta: resource.Meta{Kind: resource.KindTriggerState, Namespace: ns, Name: name,
				Labels: map[string]string{"pipeline": pipeline}}, Pipeline: pipeline, Trigger: t.Name}
			st.Schedule, st.Next = sch.desc, next
			err = s.create(ctx, st)
			if errors.Is(err, sdk.ErrAlreadyExists) {
				return nil // another server did it
			}
			return err
		}
		st.Schedule, st.Next = sch.desc, next
		if err := s.update(ctx, st); err != nil && !errors.Is(err, sdk.ErrConflict) {
			return err
		}
		return nil
	}
	due := st.Next
	at := due
	if due.Before(s.start) {
		// Missed while no server ran: fire once, after a jitter.
		key := ns + "/" + name
		j, ok := s.fireAt[key]
		if !ok || !j.due.Equal(due) {
			var d time.Duration
			if max := sch.jitter(s.opts.MaxJitter); max > 0 {
				d = rand.N(max)
			}
			j = jittered{due: due, at: now.Add(d)}
			s.fireAt[key] = j
		}
		at = j.at
	}
	if now.Before(at) {
		return nil
	}
	// Claim the due time: move Next past it. A conflict means another
	// server claimed it (or the state changed); the next tick looks again.
	rec := resource.TriggerRecord{Meta: resource.Meta{Namespace: ns, Name: newRecordName(now)},
		Type: t.Type, Pipeline: pipeline, Trigger: t.Name, FiredAt: now, Due: &due}
	st.Next = sch.after(due, now)
	st.LastDue = &due
	st.LastRecord = rec.Name
	if err := s.update(ctx, st); err != nil {
		if errors.Is(err, sdk.ErrConflict) {
			return nil
		}
		return fmt.Errorf("claim due time %s: %w", due.Format(time.RFC3339), err)
	}
	delete(s.fireAt, ns+"/"+name)
	_, err = s.fire(ctx, &firing{rec: rec}, t, false)
	return err
}
