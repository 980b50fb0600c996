package ops

import (
	"context"
	"fmt"
	"slices"

	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/manifest"
)

// KnownGroup reports an error wrapping errUnknown unless group is in
// the push config, has a manifest, or is named by a host's status.
func (s *Service) KnownGroup(group string) error {
	if err := manifest.CheckName("group", group); err != nil {
		return BadInput("%v", err)
	}
	if s.Conf().Lists(manifest.Group(group)) {
		return nil
	}
	if _, ok := s.View.Load().Groups[group]; ok {
		return nil
	}
	return fmt.Errorf("group %s: %w (not in the push config, no manifest in the bucket, no host reports it)", group, ErrUnknown)
}

// DeployGroup sets p in group's manifest: one write, whatever the group's
// size, re-applied when another writer gets in between. An active rollout
// of the app's env refuses it, unless abort asks to abort the rollout
// first.
func (s *Service) DeployGroup(ctx context.Context, user, group string, p manifest.PackageName, abort bool) (*Change, error) {
	if err := s.KnownGroup(group); err != nil {
		return nil, err
	}
	s.ReloadConfig(ctx)
	t := manifest.Group(group)
	if err := s.CheckDeploy(ctx, t, p); err != nil {
		return nil, err
	}
	return s.Edit(ctx, fleet.Edit{Target: t, User: user, Action: "set " + p.App + " to " + p.String(), Apply: SetPackage(p), Latest: true, AbortRollout: abort})
}

// Promote copies env's entry from group from to group to.
func (s *Service) Promote(ctx context.Context, user, from, env, to string) (*Change, error) {
	if err := s.KnownGroup(to); err != nil {
		return nil, err
	}
	if from == to {
		return nil, BadInput("promote %s: from and to are both %s", env, from)
	}
	m, _, err := s.Bucket.ReadManifest(ctx, manifest.Group(from))
	if err != nil {
		return nil, err
	}
	e, ok := m.Lookup(env)
	if !ok {
		return nil, BadInput("env %s is not in the manifest of group %s", env, from)
	}
	s.ReloadConfig(ctx)
	t := manifest.Group(to)
	if err := s.CheckDeploy(ctx, t, e.Package); err != nil {
		return nil, err
	}
	return s.editLatest(ctx, user, t, "promote "+env+" from group "+from+" ("+e.Package.String()+")", func(next *manifest.Manifest) error {
		e := e
		e.Restart = "" // a restart asked of from's members is not one asked of to's
		if i := slices.IndexFunc(next.Packages, func(x manifest.Entry) bool { return x.EnvName() == env }); i >= 0 {
			next.Packages[i] = e
		} else {
			next.Packages = append(next.Packages, e)
		}
		return nil
	})
}
