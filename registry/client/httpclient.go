package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Timeouts bound every HTTP download (index, artifact, and the downloads
// of registry verify and export). Zero fields take the defaults.
type Timeouts struct {
	// Connect bounds the TCP connection and the TLS handshake (default 15 s).
	Connect time.Duration
	// Header bounds the wait for the response headers (default 30 s).
	Header time.Duration
	// Idle is the longest a body may send nothing (default 30 s).
	Idle time.Duration
	// Grace and MinRate make the deadline follow progress: after Grace
	// (default 30 s) a body must have averaged MinRate bytes per second
	// (default 16 KiB/s) since its headers, so a server trickling a byte
	// at a time is cut off however long the file.
	Grace   time.Duration
	MinRate int64
	// Total caps a download however fast it goes (default 30 min).
	Total time.Duration
}

func (t Timeouts) withDefaults() Timeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Connect, 15*time.Second)
	def(&t.Header, 30*time.Second)
	def(&t.Idle, 30*time.Second)
	def(&t.Grace, 30*time.Second)
	def(&t.Total, 30*time.Minute)
	if t.MinRate <= 0 {
		t.MinRate = 16 << 10
	}
	return t
}

// ErrStalled is the cause of a download cut off by Timeouts.
var ErrStalled = errors.New("download stalled")

// NewHTTPClient returns an HTTP client whose every request has the
// connect, header, idle, progress-aware and total timeouts of t.
func NewHTTPClient(t Timeouts) *http.Client {
	t = t.withDefaults()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: t.Connect, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = t.Connect
	tr.ResponseHeaderTimeout = t.Header
	return &http.Client{Transport: &watchdogTransport{base: tr, t: t}}
}

type watchdogTransport struct {
	base http.RoundTripper
	t    Timeouts
}

func (w *watchdogTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	ctx, cancelTotal := context.WithTimeoutCause(ctx, w.t.Total, fmt.Errorf("%w: not finished within %s", ErrStalled, w.t.Total))
	resp, err := w.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancelTotal()
		cancel(nil)
		if c := context.Cause(ctx); c != nil && errors.Is(c, ErrStalled) {
			return nil, c
		}
		return nil, err
	}
	b := &watchedBody{rc: resp.Body, t: w.t, start: time.Now(), cancel: cancel, ctx: ctx, done: make(chan struct{})}
	b.last = b.start
	go b.watch(cancelTotal)
	resp.Body = b
	return resp, nil
}

// watchedBody cancels its request when the body stalls: no byte for
// Timeouts.Idle, or less than MinRate on average once Grace has passed.
type watchedBody struct {
	rc     io.ReadCloser
	t      Timeouts
	start  time.Time
	cancel context.CancelCauseFunc
	ctx    context.Context
	done   chan struct{}
	once   sync.Once

	mu   sync.Mutex
	n    int64
	last time.Time
}

func (b *watchedBody) watch(cancelTotal context.CancelFunc) {
	defer cancelTotal()
	tick := time.NewTicker(b.checkEvery())
	defer tick.Stop()
	for {
		select {
		case <-b.done:
			return
		case <-b.ctx.Done():
			return
		case now := <-tick.C:
			b.mu.Lock()
			n, last := b.n, b.last
			b.mu.Unlock()
			if idle := now.Sub(last); idle >= b.t.Idle {
				b.cancel(fmt.Errorf("%w: no data for %s", ErrStalled, idle.Round(time.Second)))
				return
			}
			if el := now.Sub(b.start); el > b.t.Grace {
				if want := int64((el - b.t.Grace).Seconds() * float64(b.t.MinRate)); n < want {
					b.cancel(fmt.Errorf("%w: %d bytes in %s, slower than %d bytes/s", ErrStalled, n, el.Round(time.Second), b.t.MinRate))
					return
				}
			}
		}
	}
}

func (b *watchedBody) checkEvery() time.Duration {
	d := min(b.t.Idle, b.t.Grace) / 4
	return max(d, 10*time.Millisecond)
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.mu.Lock()
		b.n += int64(n)
		b.last = time.Now()
		b.mu.Unlock()
	}
	if err != nil && err != io.EOF {
		if c := context.Cause(b.ctx); c != nil && errors.Is(c, ErrStalled) {
			return n, c
		}
	}
	return n, err
}

func (b *watchedBody) Close() error {
	b.once.Do(func() { close(b.done) })
	err := b.rc.Close()
	b.cancel(nil)
	return err
}
