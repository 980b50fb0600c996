package release

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pushpull/pushpull/blobstore"
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

// deploy points every server of cfg.Deploy at name, records each change
// under audit/ and nudges the servers changed. It goes on past a server it
// cannot update and returns the servers that now name the package, with
// the failures joined in an error wrapping ErrDeploy.
func deploy(ctx context.Context, store *blobstore.Store, cfg *Config, p *prepared, name manifest.PackageName) ([]string, error) {
	var done, changed []string
	var errs []error
	action := "release " + name.App + " to " + name.String()
	for _, server := range cfg.Deploy {
		var existed bool
		before, after, _, err := store.UpdateManifest(ctx, server, func(m *manifest.Manifest) error {
			existed = m.Revision > 0 || len(m.Packages) > 0
			m.SetPackage(name)
			return nil
		})
		if err != nil {
			if errors.Is(err, manifest.ErrInvalidManifest) {
				err = fmt.Errorf("manifest refused, left as it is: %w", err)
			}
			cfg.Logger.Error("deploy failed", "server", server, "package", name.String(), "err", err)
			errs = append(errs, fmt.Errorf("server %s: %w", server, err))
			continue
		}
		done = append(done, server)
		if before == after {
			cfg.Logger.Info("manifest already names the package", "server", server, "package", name.String())
			continue
		}
		changed = append(changed, server)
		cfg.Logger.Info("manifest written", "server", server, "package", name.String(), "revision", after.Revision)
		if !existed {
			before = nil
		}
		rec := &manifest.AuditRecord{Time: cfg.Now().UTC(), User: p.meta.User, Server: server, Action: action, Before: before, After: after}
		if err := store.AppendAudit(context.WithoutCancel(ctx), rec); err != nil {
			cfg.Logger.Error("audit record not written", "server", server, "err", err)
		}
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
