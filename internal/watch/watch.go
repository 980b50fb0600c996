// Package watch turns events outside pulld into nudges: a change of a GCE
// instance metadata attribute, a pub/sub message naming the server, or a
// change of the manifest file of a file:// bucket (DESIGN.md section 6).
//
// A pub/sub subscription may be to a topic the whole fleet shares, where
// each host receives every server's message and ignores the others', or to
// the server's own topic (one NATS subject per server), where it receives
// only its own; large fleets should use the latter (see PubSub). Watches
// take concrete URLs: the {server} placeholder of pulld -nudge is expanded
// by pulld.
//
// Each watch is a blocking function that runs until its context ends and
// calls Hooks.Nudge for every event. A nudge carries no data: it only asks
// pulld to poll its manifest now, so a spurious nudge costs one small
// conditional read and a lost one costs at most one poll period. The watches
// therefore err on the side of nudging, and they never give up: a broken
// connection is logged and re-established with capped exponential backoff
// (Backoff), because the poll keeps working meanwhile.
//
// Hooks.Ready is called each time a watch is (re-)established, which lets
// tests and pulld's log tell when a nudge can no longer be missed.
package watch

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Hooks are what a watch calls. Nudge is required; the others are optional.
// The functions are called from the watch's goroutine and must not block.
type Hooks struct {
	// Nudge is called for every event.
	Nudge func()
	// Ready is called each time the watch is established or re-established.
	Ready func()
	// Logger receives the watch's messages; nil discards them.
	Logger *slog.Logger
}

func (h Hooks) ready() {
	if h.Ready != nil {
		h.Ready()
	}
}

func (h Hooks) logger() *slog.Logger {
	if h.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Logger
}

// Backoff bounds the delays between attempts to re-establish a broken watch:
// the first retry waits about BackoffMin, each next one twice as long, up to
// BackoffMax, each with ±20% jitter.
const (
	BackoffMin = time.Second
	BackoffMax = time.Minute
)

// backoff returns the delay before retry number n (0-based).
func backoff(n int) time.Duration {
	d := BackoffMin
	for i := 0; i < n && d < BackoffMax; i++ {
		d *= 2
	}
	d = min(d, BackoffMax)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// sleep waits d or until ctx ends, and reports whether the full d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
