package pushui

import (
	"context"
	"time"
)

// DefaultRolloutTick is how often pushui drives its rollouts by default
// (Options.RolloutTick). A replica holds a rollout's lease for six ticks,
// so another takes over within half a minute of its death.
const DefaultRolloutTick = 5 * time.Second

// rolloutTick returns opts' tick, or the default.
func (opts Options) rolloutTick() time.Duration {
	if opts.RolloutTick > 0 {
		return opts.RolloutTick
	}
	return DefaultRolloutTick
}

// DriveRollouts drives the bucket's rollouts until ctx ends, one move
// every Options.RolloutTick (Driver.Tick: one pushui replica at a time
// drives each rollout, under a lease). Run calls it; it returns when ctx
// ends.
func (s *Server) DriveRollouts(ctx context.Context) { s.svc.Rollouts.Run(ctx, s.svc.RolloutTick) }

// every calls fn every d until ctx ends, and then returns.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}
