package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/internal/fleetview"
	"github.com/pushpull/pushpull/manifest"
)

// Change is the outcome of one manifest edit: what fleet.Writer.Edit did,
// or for one server of a promote, why it was skipped or failed.
type Change struct {
	fleet.Change
	Skipped string // why a promote left this server alone
	Err     error  // a promote's per-server failure
}

// KnownServer reports an error wrapping errUnknown unless server is
// configured or has a manifest pushui has seen.
func (s *Service) KnownServer(server string) error {
	if err := manifest.CheckName("server", server); err != nil {
		return BadInput("%v", err)
	}
	if _, ok := s.Conf().Servers[server]; ok {
		return nil
	}
	if _, ok := s.View.Load().Servers[server]; ok {
		return nil
	}
	return fmt.Errorf("server %s: %w (not in the push config, no manifest in the bucket)", server, ErrUnknown)
}

// CheckDeploy reports early, before any write, whether p may go on t: the
// config allows its app there and the package exists in the bucket.
// Fleet.Writer.Edit checks the same again at the write, which is what
// counts; this is for refusing a whole request before it writes anything.
func (s *Service) CheckDeploy(ctx context.Context, t manifest.Target, p manifest.PackageName) error {
	if !s.Conf().Allowed(t, p.App) {
		return BadInput("app %s is not allowed on %s by the push config", p.App, t)
	}
	if _, err := s.View.Stat(ctx, p); err != nil {
		if errors.Is(err, blobstore.ErrNotFound) {
			return BadInput("package %s does not exist in the bucket", p)
		}
		return fmt.Errorf("check package %s: %w", p, err)
	}
	return nil
}

// Edit applies e through the fleet writer (the one path that changes
// desired state) and keeps the cache in step: a write is stored, a
// conflict or a broken manifest re-reads the server or group. Refusals by the push
// config or for a missing package become input errors, a manifest that
// does not parse wraps errBrokenManifest.
func (s *Service) Edit(ctx context.Context, e fleet.Edit) (*Change, error) {
	c, err := s.Fleet.Edit(ctx, e)
	switch {
	case err == nil:
		if c.Changed {
			s.View.StoreManifest(e.Target, c.After, c.Version)
		}
		return &Change{Change: c}, nil
	case errors.Is(err, fleet.ErrNotAllowed), errors.Is(err, fleet.ErrNoPackage):
		return nil, BadInput("%v", err)
	case errors.Is(err, fleet.ErrRolloutActive):
		return nil, fmt.Errorf("%w: %w", ErrState, err)
	case errors.Is(err, manifest.ErrInvalidManifest):
		s.Reread(ctx, e.Target)
		return nil, fmt.Errorf("%w: %v", ErrBrokenManifest, err)
	case errors.Is(err, blobstore.ErrConflict):
		s.Reread(ctx, e.Target)
	}
	return nil, err
}

// Reread reads t's manifest into the cache again.
func (s *Service) Reread(ctx context.Context, t manifest.Target) {
	if t.IsGroup() {
		s.View.RefreshGroup(ctx, t.Name)
	} else {
		s.View.RefreshServer(ctx, t.Name)
	}
}

// EditIfVersion applies fn to t's manifest and writes the result only
// if the manifest is still at ifVersion, the Version the user's page was
// rendered from ("" = the manifest did not exist). When it is not, nothing
// is written, the cache learns the new state and the error wraps
// blobstore.ErrConflict. Errors from fn are returned as they are.
func (s *Service) EditIfVersion(ctx context.Context, user string, t manifest.Target, ifVersion blobstore.Version, action string, fn func(*manifest.Manifest) error) (*Change, error) {
	return s.Edit(ctx, fleet.Edit{Target: t, User: user, Action: action, Apply: fn, IfVersion: ifVersion})
}

// editLatest applies fn to t's current manifest, re-applying it when
// another writer gets in between. It is for edits that are right whatever
// the rest of the manifest says: setting one app's version, as promote and
// the API's deploy do.
func (s *Service) editLatest(ctx context.Context, user string, t manifest.Target, action string, fn func(*manifest.Manifest) error) (*Change, error) {
	return s.Edit(ctx, fleet.Edit{Target: t, User: user, Action: action, Apply: fn, Latest: true})
}

// SetPackage returns the edit that points app p.App at p.
func SetPackage(p manifest.PackageName) func(*manifest.Manifest) error {
	return func(m *manifest.Manifest) error {
		m.SetPackage(p)
		return nil
	}
}

// PinPackage returns the edit of server's own manifest that points app
// p.App at p. When the server's own manifest has no entry for the app but
// one of its groups gives it one, the pin starts from the group's entry
// (its env, config, policy and health), so that pinning a host's version
// (Teletraan's hotfix) changes only the version.
func (s *Service) PinPackage(server string, p manifest.PackageName) func(*manifest.Manifest) error {
	var fromGroup []manifest.Entry
	if ss := s.View.Load().Servers[server]; ss != nil {
		d := fleetview.Effective(ss, s.View.Load().Groups)
		for _, e := range d.Entries {
			if d.From[e.EnvName()].IsGroup() && e.Package.App == p.App {
				fromGroup = append(fromGroup, e)
			}
		}
	}
	return func(m *manifest.Manifest) error {
		if slices.ContainsFunc(m.Packages, func(e manifest.Entry) bool { return e.Package.App == p.App }) || len(fromGroup) == 0 {
			m.SetPackage(p)
			return nil
		}
		for _, e := range fromGroup {
			e.Package, e.Rollout, e.Stage, e.Restart = p, nil, manifest.PackageName{}, ""
			m.Packages = append(m.Packages, e)
		}
		return nil
	}
}

// RemoveApp returns the edit that removes every env of app.
func RemoveApp(t manifest.Target, app string) func(*manifest.Manifest) error {
	return func(m *manifest.Manifest) error {
		if !m.RemoveApp(app) {
			return BadInput("app %s is not in the manifest of %s", app, t)
		}
		return nil
	}
}

// RestartEnv returns the edit that gives env a new restart token: the
// current time to the nanosecond, made different from the old token if the
// clock has not moved.
func RestartEnv(t manifest.Target, env string, now time.Time) func(*manifest.Manifest) error {
	return func(m *manifest.Manifest) error {
		i := slices.IndexFunc(m.Packages, func(e manifest.Entry) bool { return e.EnvName() == env })
		if i < 0 {
			return BadInput("env %s is not in the manifest of %s", env, t)
		}
		tok := now.UTC().Format(time.RFC3339Nano)
		for n := 1; tok == m.Packages[i].Restart; n++ {
			tok = fmt.Sprintf("%s#%d", now.UTC().Format(time.RFC3339Nano), n)
		}
		m.Packages[i].Restart = tok
		return nil
	}
}

// SetConfig returns the edit that replaces env's config values.
func SetConfig(t manifest.Target, env string, cfg map[string]string) func(*manifest.Manifest) error {
	return func(m *manifest.Manifest) error {
		i := slices.IndexFunc(m.Packages, func(e manifest.Entry) bool { return e.EnvName() == env })
		if i < 0 {
			return BadInput("env %s is not in the manifest of %s", env, t)
		}
		m.Packages[i].Config = cfg
		return nil
	}
}

// DeployMany sets p on every server in servers, concurrently, each with
// editLatest. It validates every server before writing to any: an unknown
// server, one whose config does not allow the app, or a missing package
// fails the whole request with nothing written, unless skipDisallowed is
// set (promote to a group), which then skips those servers and says so.
// Per-server write failures are reported in each change's Err.
func (s *Service) DeployMany(ctx context.Context, user string, servers []string, p manifest.PackageName, action string, skipDisallowed, abort bool) ([]*Change, error) {
	if len(servers) == 0 {
		return nil, BadInput("no servers given")
	}
	s.ReloadConfig(ctx) // validate against the bucket's config as it is now
	out := make([]*Change, len(servers))
	var todo []int
	for i, srv := range servers {
		if err := s.KnownServer(srv); err != nil {
			return nil, err
		}
		if !s.Conf().Allowed(manifest.Server(srv), p.App) {
			if !skipDisallowed {
				return nil, BadInput("app %s is not allowed on server %s by the push config", p.App, srv)
			}
			out[i] = &Change{Change: fleet.Change{Target: manifest.Server(srv)}, Skipped: "the push config does not allow " + p.App + " here"}
			continue
		}
		todo = append(todo, i)
	}
	if len(todo) == 0 {
		return nil, BadInput("no server allows app %s", p.App)
	}
	if err := s.CheckDeploy(ctx, manifest.Server(servers[todo[0]]), p); err != nil {
		return nil, err
	}
	fleetview.ForEach(len(todo), 8, func(j int) {
		i := todo[j]
		c, err := s.Edit(ctx, fleet.Edit{Target: manifest.Server(servers[i]), User: user, Action: action, Apply: s.PinPackage(servers[i], p), Latest: true, AbortRollout: abort})
		if err != nil {
			c = &Change{Change: fleet.Change{Target: manifest.Server(servers[i])}, Err: err}
		}
		out[i] = c
	})
	return out, nil
}
