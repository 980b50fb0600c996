package pulld

import (
	"math/rand/v2"
	"time"

	"github.com/pushpull/pushpull/internal/backoff"
)

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

// retryDelay returns the wait after the n-th consecutive failure (n ≥ 1):
// lo, 2·lo, 4·lo, … capped at hi, with jitter, so a fleet that failed
// together drifts apart.
func retryDelay(n int, lo, hi time.Duration) time.Duration {
	return backoff.Jitter(backoff.Delay(n, lo, hi))
}
