package bench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/database"
	"github.com/palvella/palvella/plugins/database/postgres"
	"github.com/palvella/palvella/plugins/database/postgres/pgtest"
	"github.com/palvella/palvella/plugins/database/sqlite"
)

// BenchmarkDatabase measures the database plugins' key operations in
// process (the storage, not gRPC): sqlite first, then PostgreSQL (a
// server on loopback that pgtest starts, fsync off; sqlite's WAL with
// synchronous=normal does not sync at commit either), whose figures carry
// x-sqlite, their ratio to sqlite's in the same run.
func BenchmarkDatabase(b *testing.B) {
	srv := pgtest.Start(b)
	ctx := context.Background()
	open := map[string]func(b *testing.B) database.Database{
		"sqlite": func(b *testing.B) database.Database {
			p := sqlite.New()
			configureBench(b, p, map[string]any{"path": filepath.Join(b.TempDir(), "palvella.db")})
			return p
		},
		"postgres": func(b *testing.B) database.Database {
			p := postgres.New()
			configureBench(b, p, map[string]any{"dsn": srv.NewDatabase(b)})
			return p
		},
	}
	doc := make([]byte, 1024) // about a job's document
	labels := map[string]string{"pipeline": "web", "active": "true"}
	ops := []struct {
		name string
		// run returns the operation to repeat, after its setup.
		run func(b *testing.B, db database.Database) func(i int)
	}{
		{"create", func(b *testing.B, db database.Database) func(int) {
			return func(i int) {
				must(b, create(ctx, db, fmt.Sprintf("r%d", i), labels, doc))
			}
		}},
		{"get", func(b *testing.B, db database.Database) func(int) {
			must(b, create(ctx, db, "one", labels, doc))
			return func(int) {
				_, err := db.Get(ctx, database.Key{Kind: "Run", Namespace: "default", Name: "one"})
				must(b, err)
			}
		}},
		{"update", func(b *testing.B, db database.Database) func(int) {
			r, err := db.Create(ctx, &database.Resource{Key: database.Key{Kind: "Run", Namespace: "default", Name: "one"}, Labels: labels, Data: doc})
			must(b, err)
			return func(int) {
				r, err = db.Update(ctx, r)
				must(b, err)
			}
		}},
		{"list-100-of-1000-by-label", func(b *testing.B, db database.Database) func(int) {
			for i := range 1000 {
				l := map[string]string{"pipeline": []string{"web", "api"}[i%2]}
				must(b, create(ctx, db, fmt.Sprintf("r%04d", i), l, doc))
			}
			return func(int) {
				resp, err := db.List(ctx, &database.ListRequest{Kind: "Run", LabelSelector: map[string]string{"pipeline": "web"}, PageSize: 100})
				must(b, err)
				if len(resp.Items) != 100 {
					b.Fatalf("listed %d", len(resp.Items))
				}
			}
		}},
		{"enqueue-lease-ack", func(b *testing.B, db database.Database) func(int) {
			return func(int) {
				_, err := db.Enqueue(ctx, &database.EnqueueRequest{Queue: "jobs", Payload: doc[:64]})
				must(b, err)
				it, err := db.Lease(ctx, &database.LeaseRequest{Queue: "jobs", Holder: "bench", TTL: time.Minute})
				must(b, err)
				if it == nil {
					b.Fatal("nothing to lease")
				}
				must(b, db.Ack(ctx, &database.AckRequest{ID: it.ID, LeaseToken: it.LeaseToken}))
			}
		}},
		{"create-to-watch-event", func(b *testing.B, db database.Database) func(int) {
			events := make(chan database.Event, 1)
			wctx, cancel := context.WithCancel(ctx)
			b.Cleanup(cancel)
			go func() {
				_ = db.Watch(wctx, &database.WatchRequest{Kind: "Run"}, func(ev database.Event) error {
					events <- ev
					return nil
				})
			}()
			return func(i int) {
				must(b, create(ctx, db, fmt.Sprintf("w%d", i), labels, doc))
				select {
				case <-events:
				case <-time.After(10 * time.Second):
					b.Fatal("no watch event within 10s")
				}
			}
		}},
	}
	for _, op := range ops {
		var sqliteNs float64
		for _, backend := range []string{"sqlite", "postgres"} {
			b.Run(op.name+"/"+backend, func(b *testing.B) {
				db := open[backend](b)
				fn := op.run(b, db)
				i := 0
				b.ResetTimer()
				for b.Loop() {
					fn(i)
					i++
				}
				ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				if backend == "sqlite" {
					sqliteNs = ns
				} else if sqliteNs > 0 {
					b.ReportMetric(ns/sqliteNs, "x-sqlite")
				}
			})
		}
	}
}

func configureBench(b *testing.B, p interface {
	database.Database
	Close() error
}, config map[string]any) {
	b.Helper()
	resp, err := p.Configure(context.Background(), &sdk.ConfigureRequest{Config: config})
	if err == nil && sdk.HasErrors(resp.Diagnostics) {
		err = errors.New(resp.Diagnostics[0].Summary + ": " + resp.Diagnostics[0].Detail)
	}
	if err != nil {
		b.Fatalf("configure: %v", err)
	}
	b.Cleanup(func() { _ = p.Close() })
}

func create(ctx context.Context, db database.Database, name string, labels map[string]string, data []byte) error {
	_, err := db.Create(ctx, &database.Resource{Key: database.Key{Kind: "Run", Namespace: "default", Name: name}, Labels: labels, Data: data})
	return err
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
