package release

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/cli"
	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/internal/nudge"
	"github.com/pushpull/pushpull/internal/rollout"
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

// checkDeploy refuses, before anything is uploaded, a -deploy or
// -deploy-group target the push config does not allow the app on (or, with
// no config, one without a manifest): its error wraps cli.ErrUsage and
// fleet.ErrNotAllowed, and nothing is stored.
func checkDeploy(ctx context.Context, store *blobstore.Store, cfg *Config) error {
	w := fleet.New(store, fleet.Options{Logger: cfg.Logger})
	var errs []error
	for _, t := range targets(cfg) {
		if err := w.Allows(ctx, t, cfg.App); err != nil {
			if !errors.Is(err, fleet.ErrNotAllowed) {
				return err
			}
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: nothing stored: %w", cli.ErrUsage, errors.Join(errs...))
	}
	return nil
}

// targets lists cfg's servers, then its groups (deployed or rolled out):
// every manifest the push config must allow the app on.
func targets(cfg *Config) []manifest.Target {
	out := deployTargets(cfg)
	for _, g := range cfg.Rollouts {
		out = append(out, manifest.Group(g))
	}
	return out
}

// deployTargets lists the manifests deploy points at the package: cfg's
// servers, then its deployed groups. A group rolled out is not one of
// them: its rollout writes its manifest, one step at a time.
func deployTargets(cfg *Config) []manifest.Target {
	var out []manifest.Target
	for _, s := range cfg.Deploy {
		out = append(out, manifest.Server(s))
	}
	for _, g := range cfg.DeployGroups {
		out = append(out, manifest.Group(g))
	}
	return out
}

// startRollouts starts a rollout of name on each group of cfg.Rollouts,
// with the group's default strategy from the push config, and returns
// those it started. release holds each new rollout's lease for a second
// only, so that pushui takes it over at its next tick and drives it.
func startRollouts(ctx context.Context, store *blobstore.Store, cfg *Config, p *prepared, name manifest.PackageName) ([]Rollout, error) {
	opts := fleet.Options{Logger: cfg.Logger, Now: cfg.Now}
	if p.nudger != nil && p.nudger.Enabled() {
		opts.Nudger = p.nudger
	}
	w := fleet.New(store, opts)
	conf, _, err := w.Config(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %s stored, but: push config: %w", ErrDeploy, name, err)
	}
	if conf == nil {
		conf = &manifest.PushConfig{}
	}
	host, _ := os.Hostname()
	d := &rollout.Driver{Store: store, Fleet: w, Holder: "release@" + host, Lease: time.Second,
		Members: rollout.BucketMembers(store, time.Now), Log: cfg.Logger}
	var started []Rollout
	var errs []error
	for _, g := range cfg.Rollouts {
		r, err := d.Start(ctx, conf.RolloutFor(g, name), p.meta.User)
		if err != nil {
			errs = append(errs, fmt.Errorf("group %s: %w", g, err))
			continue
		}
		ref := blobstore.RefOf(r)
		started = append(started, Rollout{Group: ref.Group, Env: ref.Env, ID: ref.ID})
	}
	if len(errs) > 0 {
		return started, fmt.Errorf("%w: %s stored, but: %w", ErrDeploy, name, errors.Join(errs...))
	}
	return started, nil
}

// deploy points every server of cfg.Deploy and every group of
// cfg.DeployGroups at name through the fleet writer, the one path that
// changes desired state: the push config in the bucket must allow the app
// on each (with no config, only manifests that already exist are updated),
// and each change is audited. It goes on past one it cannot update and
// returns those that now name the package, with the failures joined in an
// error wrapping ErrDeploy. What changed is nudged together at the end:
// each server, and each group with one message for all its members.
func deploy(ctx context.Context, store *blobstore.Store, cfg *Config, p *prepared, name manifest.PackageName) ([]manifest.Target, error) {
	var done []manifest.Target
	var servers, groups []string // changed
	var errs []error
	w := fleet.New(store, fleet.Options{Logger: cfg.Logger, Now: cfg.Now})
	action := "release " + name.App + " to " + name.String()
	for _, t := range deployTargets(cfg) {
		c, err := w.Edit(ctx, fleet.Edit{Target: t, User: p.meta.User, Action: action, Latest: true, Apply: func(m *manifest.Manifest) error {
			m.SetPackage(name)
			return nil
		}})
		if err != nil {
			if errors.Is(err, manifest.ErrInvalidManifest) {
				err = fmt.Errorf("manifest refused, left as it is: %w", err)
			}
			errs = append(errs, fmt.Errorf("%s: %w", t, err))
			continue
		}
		done = append(done, t)
		switch {
		case !c.Changed:
			cfg.Logger.Info("manifest already names the package", string(t.Kind), t.Name, "package", name.String())
		case t.IsGroup():
			groups = append(groups, t.Name)
		default:
			servers = append(servers, t.Name)
		}
	}
	switch {
	case len(servers)+len(groups) == 0:
	case p.nudger == nil || !p.nudger.Enabled():
		cfg.Logger.Info("no nudge configured: the hosts pick the package up at their next poll (on file://, within a second through their file watch)", "servers", servers, "groups", groups)
	default:
		nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), nudgeTimeout)
		defer cancel()
		// Failures are logged by the nudger; pulld's poll is the failsafe.
		if len(servers) > 0 {
			_ = p.nudger.Nudge(nctx, servers...)
		}
		for _, g := range groups {
			// release does not know the group's size: its members
			// read at once (pushui's nudges spread them).
			_ = p.nudger.NudgeGroup(nctx, g, 0)
		}
	}
	if len(errs) > 0 {
		return done, fmt.Errorf("%w: %s stored, but: %w", ErrDeploy, name, errors.Join(errs...))
	}
	return done, nil
}
