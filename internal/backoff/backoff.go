// Package backoff is pushpull's one rule for waiting between tries of
// something that failed: the first wait, then twice that after each further
// failure, up to a cap, optionally spread by jitter, and waits that end
// early when their context does. pkginstall's script and download retries,
// pulld's retries of failed envs and of the bucket, the nudge watchers and
// blobstore's conditional-write retries all use it.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Delay returns the wait after the n-th consecutive failure (n ≥ 1): lo,
// 2·lo, 4·lo, …, never more than hi (hi ≤ 0: no cap). n < 1 counts as 1.
func Delay(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < n && (hi <= 0 || d < hi); i++ {
		if d > time.Duration(1<<62) {
			break // doubling again would overflow
		}
		d *= 2
	}
	if hi > 0 {
		d = min(d, hi)
	}
	return d
}

// Jitter returns d scaled by a random factor in [0.8, 1.2), so that hosts
// that failed together do not all try again in the same instant.
func Jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Sleep waits d, or until ctx ends, when it returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
