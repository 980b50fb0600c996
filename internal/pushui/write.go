package pushui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/manifest"
)

// Nudger tells servers' pulld that their manifest changed, so they act
// within a second instead of at their next poll. *nudge.Nudger implements
// it. Nudge must be safe for concurrent use; a failed nudge is reported but
// never undoes a write (the host still picks the change up when it polls).
type Nudger = fleet.Nudger

// inputError is a request the user can fix: handlers answer 400 with its
// message.
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

func badInput(format string, args ...any) error {
	return &inputError{msg: fmt.Sprintf(format, args...)}
}

// errBrokenManifest is wrapped when the manifest in the bucket does not
// parse: pushui edits nothing on top of it (a PUT of a whole manifest
// replaces it).
var errBrokenManifest = errors.New("the manifest in the bucket is invalid")

// errState is wrapped when what is asked does not fit the state of what
// it acts on (a second active rollout, pausing a finished one): 409.
var errState = errors.New("not in this state")

// errUnknown is wrapped when a server or group is neither configured nor
// in the bucket (nor, for a group, named by a host).
var errUnknown = errors.New("not known to pushui")

// change is the outcome of one manifest edit: what fleet.Writer.Edit did,
// or for one server of a promote, why it was skipped or failed.
type change struct {
	fleet.Change
	Skipped string // why a promote left this server alone
	Err     error  // a promote's per-server failure
}

// knownServer reports an error wrapping errUnknown unless server is
// configured or has a manifest pushui has seen.
func (s *service) knownServer(server string) error {
	if err := manifest.CheckName("server", server); err != nil {
		return badInput("%v", err)
	}
	if _, ok := s.conf().Servers[server]; ok {
		return nil
	}
	if _, ok := s.cache.load().servers[server]; ok {
		return nil
	}
	return fmt.Errorf("server %s: %w (not in the push config, no manifest in the bucket)", server, errUnknown)
}

// checkDeploy reports early, before any write, whether p may go on t: the
// config allows its app there and the package exists in the bucket.
// fleet.Writer.Edit checks the same again at the write, which is what
// counts; this is for refusing a whole request before it writes anything.
func (s *service) checkDeploy(ctx context.Context, t manifest.Target, p manifest.PackageName) error {
	if !s.conf().Allowed(t, p.App) {
		return badInput("app %s is not allowed on %s by the push config", p.App, t)
	}
	if _, err := s.cache.stat(ctx, p); err != nil {
		if errors.Is(err, blobstore.ErrNotFound) {
			return badInput("package %s does not exist in the bucket", p)
		}
		return fmt.Errorf("check package %s: %w", p, err)
	}
	return nil
}

// edit applies e through the fleet writer (the one path that changes
// desired state) and keeps the cache in step: a write is stored, a
// conflict or a broken manifest re-reads the server or group. Refusals by the push
// config or for a missing package become input errors, a manifest that
// does not parse wraps errBrokenManifest.
func (s *service) edit(ctx context.Context, e fleet.Edit) (*change, error) {
	c, err := s.fleet.Edit(ctx, e)
	switch {
	case err == nil:
		if c.Changed {
			s.cache.storeManifest(e.Target, c.After, c.Version)
		}
		return &change{Change: c}, nil
	case errors.Is(err, fleet.ErrNotAllowed), errors.Is(err, fleet.ErrNoPackage):
		return nil, badInput("%v", err)
	case errors.Is(err, fleet.ErrRolloutActive):
		return nil, fmt.Errorf("%w: %w", errState, err)
	case errors.Is(err, manifest.ErrInvalidManifest):
		s.reread(ctx, e.Target)
		return nil, fmt.Errorf("%w: %v", errBrokenManifest, err)
	case errors.Is(err, blobstore.ErrConflict):
		s.reread(ctx, e.Target)
	}
	return nil, err
}

// reread reads t's manifest into the cache again.
func (s *service) reread(ctx context.Context, t manifest.Target) {
	if t.IsGroup() {
		s.cache.refreshGroup(ctx, t.Name)
	} else {
		s.cache.refreshServer(ctx, t.Name)
	}
}

// editIfVersion applies fn to t's manifest and writes the result only
// if the manifest is still at ifVersion, the Version the user's page was
// rendered from ("" = the manifest did not exist). When it is not, nothing
// is written, the cache learns the new state and the error wraps
// blobstore.ErrConflict. Errors from fn are returned as they are.
func (s *service) editIfVersion(ctx context.Context, user string, t manifest.Target, ifVersion blobstore.Version, action string, fn func(*manifest.Manifest) error) (*change, error) {
	return s.edit(ctx, fleet.Edit{Target: t, User: user, Action: action, Apply: fn, IfVersion: ifVersion})
}

// editLatest applies fn to t's current manifest, re-applying it when
// another writer gets in between. It is for edits that are right whatever
// the rest of the manifest says: setting one app's version, as promote and
// the API's deploy do.
func (s *service) editLatest(ctx context.Context, user string, t manifest.Target, action string, fn func(*manifest.Manifest) error) (*change, error) {
	return s.edit(ctx, fleet.Edit{Target: t, User: user, Action: action, Apply: fn, Latest: true})
}

// setPackage returns the edit that points app p.App at p.
func setPackage(p manifest.PackageName) func(*manifest.Manifest) error {
	return func(m *manifest.Manifest) error {
		m.SetPackage(p)
		return nil
	}
}

// pinPackage returns the edit of server's own manifest that points app
// p.App at p. When the server's own manifest has no entry for the app but
// one of its groups gives it one, the pin starts from the group's entry
// (its env, config, policy and health), so that pinning a host's version
// (Teletraan's hotfix) changes only the version.
func (s *service) pinPackage(server string, p manifest.PackageName) func(*manifest.Manifest) error {
	var fromGroup []manifest.Entry
	if ss := s.cache.load().servers[server]; ss != nil {
		d := effective(ss, s.cache.load().groups)
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

// removeApp returns the edit that removes every env of app.
func removeApp(t manifest.Target, app string) func(*manifest.Manifest) error {
	return func(m *manifest.Manifest) error {
		if !m.RemoveApp(app) {
			return badInput("app %s is not in the manifest of %s", app, t)
		}
		return nil
	}
}

// restartEnv returns the edit that gives env a new restart token: the
// current time to the nanosecond, made different from the old token if the
// clock has not moved.
func restartEnv(t manifest.Target, env string, now time.Time) func(*manifest.Manifest) error {
	return func(m *manifest.Manifest) error {
		i := slices.IndexFunc(m.Packages, func(e manifest.Entry) bool { return e.EnvName() == env })
		if i < 0 {
			return badInput("env %s is not in the manifest of %s", env, t)
		}
		tok := now.UTC().Format(time.RFC3339Nano)
		for n := 1; tok == m.Packages[i].Restart; n++ {
			tok = fmt.Sprintf("%s#%d", now.UTC().Format(time.RFC3339Nano), n)
		}
		m.Packages[i].Restart = tok
		return nil
	}
}

// setConfig returns the edit that replaces env's config values.
func setConfig(t manifest.Target, env string, cfg map[string]string) func(*manifest.Manifest) error {
	return func(m *manifest.Manifest) error {
		i := slices.IndexFunc(m.Packages, func(e manifest.Entry) bool { return e.EnvName() == env })
		if i < 0 {
			return badInput("env %s is not in the manifest of %s", env, t)
		}
		m.Packages[i].Config = cfg
		return nil
	}
}

// deployMany sets p on every server in servers, concurrently, each with
// editLatest. It validates every server before writing to any: an unknown
// server, one whose config does not allow the app, or a missing package
// fails the whole request with nothing written, unless skipDisallowed is
// set (promote to a group), which then skips those servers and says so.
// Per-server write failures are reported in each change's Err.
func (s *service) deployMany(ctx context.Context, user string, servers []string, p manifest.PackageName, action string, skipDisallowed, abort bool) ([]*change, error) {
	if len(servers) == 0 {
		return nil, badInput("no servers given")
	}
	s.reloadConfig(ctx) // validate against the bucket's config as it is now
	out := make([]*change, len(servers))
	var todo []int
	for i, srv := range servers {
		if err := s.knownServer(srv); err != nil {
			return nil, err
		}
		if !s.conf().Allowed(manifest.Server(srv), p.App) {
			if !skipDisallowed {
				return nil, badInput("app %s is not allowed on server %s by the push config", p.App, srv)
			}
			out[i] = &change{Change: fleet.Change{Target: manifest.Server(srv)}, Skipped: "the push config does not allow " + p.App + " here"}
			continue
		}
		todo = append(todo, i)
	}
	if len(todo) == 0 {
		return nil, badInput("no server allows app %s", p.App)
	}
	if err := s.checkDeploy(ctx, manifest.Server(servers[todo[0]]), p); err != nil {
		return nil, err
	}
	forEach(len(todo), 8, func(j int) {
		i := todo[j]
		c, err := s.edit(ctx, fleet.Edit{Target: manifest.Server(servers[i]), User: user, Action: action, Apply: s.pinPackage(servers[i], p), Latest: true, AbortRollout: abort})
		if err != nil {
			c = &change{Change: fleet.Change{Target: manifest.Server(servers[i])}, Err: err}
		}
		out[i] = c
	})
	return out, nil
}
