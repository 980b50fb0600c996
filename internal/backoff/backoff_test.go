package backoff_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pushpull/pushpull/internal/backoff"
)

func TestDelay(t *testing.T) {
	const s = time.Second
	for _, tc := range []struct {
		n      int
		lo, hi time.Duration
		want   time.Duration
	}{
		{0, s, 0, s},
		{1, s, 0, s},
		{2, s, 0, 2 * s},
		{4, 2 * s, 0, 16 * s},
		{3, s, 3 * s, 3 * s},
		{10, s, time.Minute, time.Minute},
		{1, 5 * s, 2 * s, 2 * s},
		{200, s, 0, time.Duration(1 << 62)},
	} {
		if got := backoff.Delay(tc.n, tc.lo, tc.hi); got < 0 || (tc.n < 200 && got != tc.want) {
			t.Errorf("Delay(%d, %v, %v) = %v, want %v", tc.n, tc.lo, tc.hi, got, tc.want)
		}
	}
}

func TestJitter(t *testing.T) {
	for range 1000 {
		if d := backoff.Jitter(time.Second); d < 800*time.Millisecond || d >= 1200*time.Millisecond {
			t.Fatalf("Jitter(1s) = %v, outside [0.8s, 1.2s)", d)
		}
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := backoff.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep after cancel = %v", err)
	}
	if err := backoff.Sleep(t.Context(), time.Millisecond); err != nil {
		t.Fatalf("Sleep(1ms) = %v", err)
	}
}
