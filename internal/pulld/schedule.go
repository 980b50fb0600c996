package pulld

import (
	"context"
	"math/rand/v2"
	"time"
)

// jitter returns d scaled by a random factor in [0.8, 1.2): polls of a
// fleet started together drift apart instead of hitting the bucket at once.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// initialDelay returns the random wait before the first poll: up to a tenth
// of the poll period, at most maxInitialDelay, so a fleet rebooted at once
// spreads its first reads while a restarted pulld still looks soon.
func initialDelay(poll time.Duration) time.Duration {
	limit := min(poll/10, maxInitialDelay)
	if limit <= 0 {
		return 0
	}
	return rand.N(limit)
}

// maxInitialDelay caps initialDelay.
const maxInitialDelay = 30 * time.Second

// backoff returns the delay after the n-th consecutive failure (n ≥ 1):
// lo, 2·lo, 4·lo, … capped at hi, with jitter.
func backoff(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	return jitter(min(d, hi))
}

// sleepCtx waits d, or until ctx ends, when it returns ctx's error.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
