package trigger

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/palvella/palvella/core/resource"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
)

// Retention of trigger records
//
// Records are kept for a time (Options.RecordRetention, 30 days by
// default) and at most Options.MaxRecords per pipeline (1000): the service
// deletes older ones every Options.PruneEvery, and prunes a pipeline as
// soon as a tenth of the cap was added to it since its last pruning, so a
// flood of refused calls to a real pipeline cannot grow the database
// beyond about 1.1 times the cap.
//
// The records that claim a webhook delivery ("wh-" and a hash of
// pipeline, trigger and delivery ID) are what refuses a replayed call, so
// the cap never deletes them: only signed calls create them, so no
// outsider can push them out. They go with the retention, which is
// therefore how long a delivery ID is refused as a replay.

// Defaults of the retention.
const (
	DefaultRecordRetention = 30 * 24 * time.Hour
	DefaultMaxRecords      = 1000
	DefaultPruneEvery      = 10 * time.Minute
)

// claimPrefix starts the names of delivery claims (deliveryRecordName).
const claimPrefix = "wh-"

// pruneState counts the records added per pipeline since it was pruned.
type pruneState struct {
	mu      sync.Mutex
	added   map[string]int  // namespace/pipeline -> records added
	running map[string]bool // a pruning of the pipeline is under way
}

// noteRecord counts a record written for a pipeline, and prunes the
// pipeline in the background once a tenth of the cap was added.
func (s *Service) noteRecord(ns, pipeline string) {
	if s.opts.MaxRecords <= 0 {
		return
	}
	key := ns + "/" + pipeline
	p := &s.prune
	p.mu.Lock()
	if p.added == nil {
		p.added, p.running = map[string]int{}, map[string]bool{}
	}
	p.added[key]++
	threshold := max(s.opts.MaxRecords/10, 1)
	start := p.added[key] >= threshold && !p.running[key]
	if start {
		p.added[key] = 0
		p.running[key] = true
	}
	p.mu.Unlock()
	if !start {
		return
	}
	go func() {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if _, err := s.PrunePipeline(ctx, ns, pipeline); err != nil {
				s.log.Warn("prune trigger records", "namespace", ns, "pipeline", pipeline, "error", err)
			}
			cancel()
			// Records added meanwhile: once more if they reach the
			// threshold, so a burst ends near the cap.
			p.mu.Lock()
			if p.added[key] < threshold {
				delete(p.running, key)
				p.mu.Unlock()
				return
			}
			p.added[key] = 0
			p.mu.Unlock()
		}
	}()
}

// pruneLoop prunes every record now and then every PruneEvery, until ctx
// ends.
func (s *Service) pruneLoop(ctx context.Context) {
	t := time.NewTicker(s.opts.PruneEvery)
	defer t.Stop()
	for {
		if n, err := s.Prune(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("prune trigger records", "error", err)
		} else if n > 0 {
			s.log.Info("pruned trigger records", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Prune deletes the trigger records of every pipeline that are past the
// retention or beyond the cap, and returns how many it deleted.
func (s *Service) Prune(ctx context.Context) (int, error) {
	db, err := s.opts.Database(ctx)
	if err != nil {
		return 0, err
	}
	byPipeline := map[string][]recordInfo{}
	if err := eachPage(ctx, db, resource.KindTriggerRecord, func(r *database.Resource) error {
		info, err := infoOf(r)
		if err != nil {
			s.log.Warn("prune trigger records: an unreadable record is kept", "namespace", r.Key.Namespace, "name", r.Key.Name, "error", err)
			return nil
		}
		k := r.Key.Namespace + "/" + info.pipeline
		byPipeline[k] = append(byPipeline[k], info)
		return nil
	}); err != nil {
		return 0, fmt.Errorf("list trigger records: %w", err)
	}
	keys := make([]string, 0, len(byPipeline))
	for k := range byPipeline {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	total := 0
	for _, k := range keys {
		n, err := s.deleteRecords(ctx, db, s.expired(byPipeline[k]))
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// PrunePipeline prunes the records of one pipeline.
func (s *Service) PrunePipeline(ctx context.Context, ns, pipeline string) (int, error) {
	db, err := s.opts.Database(ctx)
	if err != nil {
		return 0, err
	}
	var infos []recordInfo
	token := ""
	for {
		resp, err := db.List(ctx, &database.ListRequest{Kind: resource.KindTriggerRecord, Namespace: ns,
			LabelSelector: map[string]string{"pipeline": pipeline}, PageSize: 500, PageToken: token})
		if err != nil {
			return 0, fmt.Errorf("list trigger records: %w", err)
		}
		for i := range resp.Items {
			if info, err := infoOf(&resp.Items[i]); err == nil {
				infos = append(infos, info)
			}
		}
		if resp.NextPageToken == "" {
			break
		}
		token = resp.NextPageToken
	}
	return s.deleteRecords(ctx, db, s.expired(infos))
}

// recordInfo is what pruning needs of a record.
type recordInfo struct {
	key      database.Key
	pipeline string
	at       time.Time
	claim    bool
}

func infoOf(r *database.Resource) (recordInfo, error) {
	var rec resource.TriggerRecord
	if err := decode(r, &rec); err != nil {
		return recordInfo{}, err
	}
	at := rec.FiredAt
	if at.IsZero() {
		at = r.CreatedAt
	}
	return recordInfo{key: r.Key, pipeline: rec.Pipeline, at: at, claim: strings.HasPrefix(r.Key.Name, claimPrefix)}, nil
}

// expired returns the records of one pipeline to delete: those past the
// retention, and the oldest of the others beyond the cap, delivery claims
// excepted.
func (s *Service) expired(infos []recordInfo) []database.Key {
	cutoff := s.now().Add(-s.opts.RecordRetention)
	var out []database.Key
	var capped []recordInfo
	for _, r := range infos {
		switch {
		case s.opts.RecordRetention > 0 && r.at.Before(cutoff):
			out = append(out, r.key)
		case !r.claim:
			capped = append(capped, r)
		}
	}
	if s.opts.MaxRecords > 0 && len(capped) > s.opts.MaxRecords {
		sort.Slice(capped, func(i, j int) bool {
			if !capped[i].at.Equal(capped[j].at) {
				return capped[i].at.After(capped[j].at)
			}
			return capped[i].key.Name > capped[j].key.Name
		})
		for _, r := range capped[s.opts.MaxRecords:] {
			out = append(out, r.key)
		}
	}
	return out
}

func (s *Service) deleteRecords(ctx context.Context, db database.Database, keys []database.Key) (int, error) {
	n := 0
	for _, k := range keys {
		if err := db.Delete(ctx, &database.DeleteRequest{Key: k}); err != nil && !errors.Is(err, sdk.ErrNotFound) {
			return n, fmt.Errorf("delete trigger record %s/%s: %w", k.Namespace, k.Name, err)
		}
		n++
	}
	return n, nil
}
