// This file and watch_*.go are the receiving half: the watches that turn
// events outside pulld into nudges, a change of a GCE instance metadata
// attribute (PushrevKey, which the GCE form sets), a pub/sub message naming
// the server, or a change of the manifest file of a file:// bucket.
//
// A pub/sub subscription may be to a topic the whole fleet shares, where
// each host receives every server's message and ignores the others', or to
// the server's own topic (one NATS subject per server), where it receives
// only its own; large fleets should use the latter (see WatchPubSub). Watches
// take concrete URLs: the {server} placeholder of pulld -nudge is expanded
// by pulld.
//
// Each watch is a blocking function that runs until its context ends and
// calls Hooks.Nudge for every event. A nudge carries no data: it only asks
// pulld to poll its manifest now, so a spurious nudge costs one small
// conditional read and a lost one costs at most one poll period. The watches
// therefore err on the side of nudging, and they never give up: a broken
// connection is logged and re-established with capped exponential backoff
// (WatchBackoffMin, WatchBackoffMax), because the poll keeps working
// meanwhile.
//
// Hooks.Ready is called each time a watch is (re-)established, which lets
// tests and pulld's log tell when a nudge can no longer be missed.

package nudge

import (
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/pushpull/pushpull/internal/backoff"
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

// spread nudges after a random wait within d (Delay), at once for d ≤ 0.
func (h Hooks) spread(d time.Duration) {
	if w := Delay(d); w > 0 {
		time.AfterFunc(w, h.Nudge)
		return
	}
	h.Nudge()
}

// ParseSpread parses the spread a group nudge carries (SpreadKey,
// SpreadHeader): a Go duration, at most MaxSpread. Anything else is no
// spread: a malformed hint must not delay a deploy.
func ParseSpread(s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0
	}
	return min(d, MaxSpread)
}

// Delay returns a random wait within spread, 0 for no spread.
func Delay(spread time.Duration) time.Duration {
	if spread <= 0 {
		return 0
	}
	return rand.N(spread)
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
// the first retry waits about WatchBackoffMin, each next one twice as long, up to
// WatchBackoffMax, each with ±20% jitter.
const (
	WatchBackoffMin = time.Second
	WatchBackoffMax = time.Minute
)

// retryDelay returns the delay before retry number n (0-based).
func retryDelay(n int) time.Duration {
	return backoff.Jitter(backoff.Delay(n+1, WatchBackoffMin, WatchBackoffMax))
}
