package release

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/internal/nudge"
	"github.com/pushpull/pushpull/manifest"
)

// nudgeTimeout bounds all the nudges of one release.
const nudgeTimeout = 30 * time.Second

// newNudger opens the nudger cfg.Nudge describes, with cfg's logger.
func newNudger(ctx context.Context, cfg *Config) (*nudge.Nudger, error) {
	nc := cfg.Nudge
	if nc.Logger == nil {
		nc.Logger = cfg.Logger
	}
	return nudge.New(ctx, nc)
}

// checkConditional refuses a store that would lose manifest updates
// (fleet.CheckStore) before anything is uploaded.
func checkConditional(ctx context.Context, store *blobstore.Store, cfg *Config) error {
	if err := fleet.CheckStore(ctx, store, cfg.AllowUnconditionalStore, cfg.Logger); err != nil {
		return err
	}
	return nil
}

// deploy points every server of cfg.Deploy at name through the fleet
// writer, the one path that changes desired state: the push config in the
// bucket must allow the app on each server (with no config, only servers
// that already have a manifest are updated), and each change is audited.
// It goes on past a server it cannot update and returns the servers that
// now name the package, with the failures joined in an error wrapping
// ErrDeploy. The servers changed are nudged together at the end.
func deploy(ctx context.Context, store *blobstore.Store, cfg *Config, p *prepared, name manifest.PackageName) ([]string, error) {
	var done, changed []string
	var errs []error
	w := fleet.New(store, fleet.Options{Logger: cfg.Logger, Now: cfg.Now})
	action := "release " + name.App + " to " + name.String()
	for _, server := range cfg.Deploy {
		c, err := w.Edit(ctx, fleet.Edit{Target: manifest.Server(server), User: p.meta.User, Action: action, Latest: true, Apply: func(m *manifest.Manifest) error {
			m.SetPackage(name)
			return nil
		}})
		if err != nil {
			if errors.Is(err, manifest.ErrInvalidManifest) {
				err = fmt.Errorf("manifest refused, left as it is: %w", err)
			}
			cfg.Logger.Error("deploy failed", "server", server, "package", name.String(), "err", err)
			errs = append(errs, fmt.Errorf("server %s: %w", server, err))
			continue
		}
		done = append(done, server)
		if !c.Changed {
			cfg.Logger.Info("manifest already names the package", "server", server, "package", name.String())
			continue
		}
		changed = append(changed, server)
	}
	switch {
	case len(changed) == 0:
	case p.nudger == nil || !p.nudger.Enabled():
		cfg.Logger.Info("no nudge configured: the servers pick the package up at their next poll", "servers", changed)
	default:
		nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), nudgeTimeout)
		defer cancel()
		// Failures are logged by the nudger; pulld's poll is the failsafe.
		_ = p.nudger.Nudge(nctx, changed...)
	}
	if len(errs) > 0 {
		return done, fmt.Errorf("%w: %s stored, but: %w", ErrDeploy, name, errors.Join(errs...))
	}
	return done, nil
}
