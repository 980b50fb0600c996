package ops

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/internal/fleetview"
	"github.com/pushpull/pushpull/internal/rollout"
	"github.com/pushpull/pushpull/manifest"
)

// Service is what pushui does, for its pages and its API alike: the view
// of the bucket, the one write path, the rollouts and the push config.
type Service struct {
	Bucket      fleetview.Bucket
	Fleet       *fleet.Writer
	Rollouts    *rollout.Driver
	RolloutTick time.Duration
	Config      atomic.Pointer[PushConfig]
	Log         *slog.Logger
	Now         func() time.Time
	View        *fleetview.View
}

// Options configures a service.
type Options struct {
	Store       *blobstore.Store // the bucket the writes go to
	Bucket      fleetview.Bucket // the bucket the view reads: Store, or a wrapper of it
	Config      *manifest.PushConfig
	Nudger      fleet.Nudger
	Logger      *slog.Logger
	Now         func() time.Time
	RolloutTick time.Duration
}

// New returns the service over o.Store, after bootstrapping the push
// config (see Options.Config); its view is empty until refreshed.
func New(ctx context.Context, o Options) (*Service, error) {
	svc := &Service{Bucket: o.Bucket, Log: o.Logger, Now: o.Now, RolloutTick: o.RolloutTick}
	// A group's nudge spreads its members' reads over a window sized to
	// the members pushui knows of (the cache exists by the first write).
	svc.Fleet = fleet.New(o.Store, fleet.Options{Nudger: o.Nudger, Logger: o.Logger, Now: o.Now,
		Members: func(g string) int { return len(svc.View.Load().Members(g)) },
		AbortRollout: func(ctx context.Context, group, env, id, user string) error {
			_, err := svc.Rollouts.Command(ctx, blobstore.RolloutRef{Group: group, Env: env, ID: id}, rollout.Abort, user)
			return err
		}})
	svc.Rollouts = svc.newDriver(o.Store, o.RolloutTick)
	if err := svc.bootstrapConfig(ctx, o.Config); err != nil {
		return nil, err
	}
	svc.View = fleetview.New(o.Bucket, svc.Conf, o.Logger, o.Now)
	return svc, nil
}
