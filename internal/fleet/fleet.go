// Package fleet is the one code path that changes desired state: every
// program that writes a server's or a group's manifest (pushui's forms and
// API, release -deploy, and what comes later) calls Writer.Edit, which
//
//  1. reads the manifest and applies the caller's change to a copy,
//  2. checks the result against the push config in the bucket
//     (config/push.json): a server or group the config does not list, or an
//     app it does not allow there, is refused with the reason, and nothing
//     is written; with no config in the bucket only manifests that already
//     exist may be changed. Every package the change introduces must exist
//     in the bucket;
//  3. writes it conditionally on the version read: either the version the
//     caller based its change on (a form, an If-Match) or, for changes that
//     are right whatever else the manifest says, the latest, re-applying
//     the change when another writer got in between;
//  4. records the change under audit/ and nudges the server, or every
//     member of the group with one message (Nudger.NudgeGroup).
//
// The outcome is a Change value: what the manifest was and is, its new
// version, whether it existed and whether anything was written.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
)

// Errors Edit returns (wrapped), besides blobstore.ErrConflict (the
// manifest changed since the version the caller gave) and
// manifest.ErrInvalidManifest (the manifest in the bucket does not parse:
// nothing is changed on top of it).
var (
	// ErrNotAllowed: the push config does not allow the change (a server
	// it does not list, an app it does not allow there), or there is no
	// push config and the server has no manifest yet.
	ErrNotAllowed = errors.New("refused by the push config")
	// ErrNoPackage: a package the change introduces is not in the bucket.
	ErrNoPackage = errors.New("does not exist in the bucket")
	// ErrRolloutActive: the change would move an env that an active
	// rollout drives (errors.As gives the *RolloutActiveError naming it).
	ErrRolloutActive = errors.New("an active rollout drives it")
)

// RolloutActiveError is the refusal of a change that would move an env
// under an active rollout: the rollout's own steps are the only writes of
// that env's entry until it ends (abort it first).
type RolloutActiveError struct {
	Target     manifest.Target // what the change was for
	Group, Env string          // the rollout's
	ID         string
	State      manifest.RolloutState
}

func (e *RolloutActiveError) Error() string {
	on := ""
	if !e.Target.IsGroup() {
		on = " (" + e.Target.String() + " is a member)"
	}
	return fmt.Sprintf("fleet: rollout %s of group %s env %s is %s%s: abort it first", e.ID, e.Group, e.Env, e.State, on)
}

// Is makes the error match ErrRolloutActive.
func (e *RolloutActiveError) Is(target error) bool { return target == ErrRolloutActive }

// Nudger tells servers' pulld that their manifest, or their group's,
// changed. *nudge.Nudger implements it. It must be safe for concurrent use.
type Nudger interface {
	Nudge(ctx context.Context, servers ...string) error
	// NudgeGroup nudges every member of group, which has members hosts
	// as far as the caller knows (0: unknown), with one message.
	NudgeGroup(ctx context.Context, group string, members int) error
}

// nudgeTimeout bounds the nudge of one change.
const nudgeTimeout = 10 * time.Second

// Options configures a Writer.
type Options struct {
	// Nudger is told about every server whose manifest changed; nil sends
	// no nudges (hosts act at their next poll).
	Nudger Nudger
	// Logger receives one line per write and per failed audit or nudge.
	// Required.
	Logger *slog.Logger
	// Now returns the time recorded in audit records; nil means time.Now.
	Now func() time.Time
	// Members returns how many hosts a group has, for the spread of its
	// nudge (nudge.Spread); nil means unknown. pushui counts them from
	// the statuses it holds.
	Members func(group string) int
	// AbortRollout aborts the active rollout id of group env for user: what
	// an Edit with AbortRollout set does to the rollouts in its way
	// (rollout.Driver.Command). nil refuses such an Edit as any other.
	AbortRollout func(ctx context.Context, group, env, id, user string) error
}

// Writer changes desired state in one bucket. It is safe for concurrent
// use. It remembers the push config by version (one small request per
// Config call while it is unchanged) and which packages it has seen exist
// (packages are immutable).
type Writer struct {
	store   *blobstore.Store
	nudger  Nudger
	log     *slog.Logger
	now     func() time.Time
	members func(group string) int
	abort   func(ctx context.Context, group, env, id, user string) error

	mu       sync.Mutex
	conf     *manifest.PushConfig
	confV    blobstore.Version
	confErr  error
	confRead bool
	exists   map[string]bool   // packages known to exist
	ended    map[string]string // rollouts known to have ended: "group/env@marker version" → ID
}

// New returns a Writer over store; it does not close store.
func New(store *blobstore.Store, opts Options) *Writer {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Writer{store: store, nudger: opts.Nudger, log: log, now: now, members: opts.Members, abort: opts.AbortRollout, exists: map[string]bool{}, ended: map[string]string{}}
}

// Config returns the push config in the bucket and its version: nil and ""
// when there is none. It reads the config again only when its version
// changed since the last call. An invalid config is an error (and refuses
// every edit until it is fixed).
func (w *Writer) Config(ctx context.Context) (*manifest.PushConfig, blobstore.Version, error) {
	w.mu.Lock()
	read, v := w.confRead, w.confV
	w.mu.Unlock()
	if read {
		changed, _, err := w.store.ChangedPushConfig(ctx, v)
		if err != nil {
			return nil, "", err
		}
		if !changed {
			w.mu.Lock()
			defer w.mu.Unlock()
			return w.conf, w.confV, w.confErr
		}
	}
	c, nv, err := w.store.ReadPushConfig(ctx)
	if err != nil && nv == "" {
		return nil, "", err // a bucket error: nothing learnt
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.conf, w.confV, w.confErr, w.confRead = c, nv, err, true
	return c, nv, err
}

// Edit is one change of one manifest, a server's or a group's.
type Edit struct {
	Target manifest.Target
	// User and Action are recorded in the audit record ("ann",
	// "set hello to hello/…").
	User, Action string
	// Apply changes the manifest it is given (a copy of the current one;
	// empty when there is none). It may be called more than once, and when
	// it returns an error nothing is written and Edit returns that error.
	Apply func(m *manifest.Manifest) error
	// Latest re-applies the change to the latest manifest when another
	// writer got in between. Otherwise the change is based on IfVersion,
	// the version the caller read ("" = the manifest did not exist), and
	// fails with blobstore.ErrConflict when the manifest is no longer at it.
	Latest    bool
	IfVersion blobstore.Version
	// OverInvalid lets a change based on IfVersion replace a manifest that
	// does not parse (a PUT of a whole manifest does); Apply is then given
	// an empty one.
	OverInvalid bool
	// Rollout is the ID of the rollout that makes this change (its
	// controller's steps), which may move the env it drives. Any other
	// change that moves an env under an active rollout (its package,
	// rollout or stage, or its removal) is refused with a
	// *RolloutActiveError: of a group's env, or of a server's env that a
	// group of the server (as its status reports them) rolls out.
	Rollout string
	// AbortRollout asks that the active rollouts in the change's way be
	// aborted first (Options.AbortRollout), instead of refusing it; the
	// audit record's action says which were.
	AbortRollout bool
}

// Change is what an Edit did.
type Change struct {
	Target  manifest.Target
	Before  *manifest.Manifest // the manifest the change was applied to; nil when it did not exist
	After   *manifest.Manifest // the manifest now stored (Before when nothing changed)
	Version blobstore.Version  // of After
	Existed bool               // whether the manifest existed
	Changed bool               // whether anything was written
	// AuditErr and NudgeErr report a failed audit record or nudge after
	// the write, which stands: the host picks the change up when it polls.
	AuditErr, NudgeErr error
}

// Edit applies e (see the package doc). The error wraps ErrNotAllowed,
// ErrNoPackage, blobstore.ErrConflict, manifest.ErrInvalidManifest or
// Apply's own error; on any error nothing was written.
func (w *Writer) Edit(ctx context.Context, e Edit) (Change, error) {
	if err := e.Target.Check(); err != nil {
		return Change{}, fmt.Errorf("fleet: %w", err)
	}
	conf, _, err := w.Config(ctx)
	if err != nil {
		return Change{}, fmt.Errorf("fleet: push config: %w", err)
	}
	guard, aborted := w.rolloutGuard(e)
	check := func(before, after *manifest.Manifest, existed bool) error {
		if err := guard(ctx, before, after); err != nil {
			return err
		}
		return w.check(ctx, conf, e.Target, before, after, existed)
	}
	var c Change
	if e.Latest {
		c, err = w.editLatest(ctx, e, check)
	} else {
		c, err = w.editAt(ctx, e, check)
	}
	if err != nil || !c.Changed {
		return c, err
	}
	if ids := aborted(); len(ids) > 0 {
		e.Action += " (aborted rollout " + strings.Join(ids, ", ") + " first)"
	}
	w.written(ctx, e, &c)
	return c, nil
}

// editLatest applies e to t's current manifest, re-applied when another
// writer gets in between; editAt applies it only to the version e.IfVersion.
// Both go through blobstore's one conditional update.
func (w *Writer) editLatest(ctx context.Context, e Edit, check func(before, after *manifest.Manifest, existed bool) error) (Change, error) {
	return w.update(ctx, e, check, func(fn func(*manifest.Manifest, bool) error) (blobstore.ManifestUpdate, error) {
		return w.store.UpdateManifest(ctx, e.Target, fn)
	})
}

func (w *Writer) editAt(ctx context.Context, e Edit, check func(before, after *manifest.Manifest, existed bool) error) (Change, error) {
	return w.update(ctx, e, check, func(fn func(*manifest.Manifest, bool) error) (blobstore.ManifestUpdate, error) {
		return w.store.UpdateManifestAt(ctx, e.Target, e.IfVersion, e.OverInvalid, fn)
	})
}

// update runs one update of e's manifest: e.Apply, then check, on each
// read the update makes.
func (w *Writer) update(ctx context.Context, e Edit, check func(before, after *manifest.Manifest, existed bool) error,
	run func(fn func(*manifest.Manifest, bool) error) (blobstore.ManifestUpdate, error)) (Change, error) {
	u, err := run(func(m *manifest.Manifest, existed bool) error {
		before := m.Clone()
		if err := e.Apply(m); err != nil {
			return err
		}
		if existed && string(before.Marshal()) == string(m.Marshal()) {
			return nil // nothing to write, nothing to check
		}
		return check(before, m, existed)
	})
	if err != nil {
		return Change{}, err
	}
	c := Change{Target: e.Target, Before: u.Before, After: u.After, Version: u.Version, Existed: u.Existed, Changed: u.Changed}
	if !c.Existed {
		c.Before = nil
	}
	return c, nil
}

// check decides whether after may replace before on t: the push config's
// allow-list for every entry that is new or names another package, and
// that those packages exist. Removing entries and changing an entry's
// config, policy or restart token need no permission beyond t being known.
func (w *Writer) check(ctx context.Context, conf *manifest.PushConfig, t manifest.Target, before, after *manifest.Manifest, existed bool) error {
	listed := conf != nil && conf.Lists(t)
	switch {
	case conf == nil && !existed:
		return fmt.Errorf("fleet: %s has no manifest, and there is no push config (%s) to allow one: %w", t, blobstore.PushConfigKey, ErrNotAllowed)
	case conf != nil && !listed && !existed:
		return fmt.Errorf("fleet: %s is not in the push config (%s): %w", t, blobstore.PushConfigKey, ErrNotAllowed)
	}
	for i, e := range after.Packages {
		if old, ok := before.Lookup(e.EnvName()); ok && old.Package == e.Package {
			continue
		}
		switch {
		case conf != nil && !listed:
			return fmt.Errorf("fleet: %s is not in the push config (%s): %w", t, blobstore.PushConfigKey, ErrNotAllowed)
		case conf != nil && !conf.Allowed(t, e.Package.App):
			return fmt.Errorf("fleet: packages[%d] (%s): app %s is not allowed on %s: %w", i, e.Package, e.Package.App, t, ErrNotAllowed)
		}
		if err := w.packageExists(ctx, e.Package); err != nil {
			return fmt.Errorf("fleet: packages[%d] (%s): %w", i, e.Package, err)
		}
	}
	return nil
}

// moved returns the envs whose entry differs between before and after in
// what a rollout drives: the package, the rollout, the stage, or the
// entry's presence.
func moved(before, after *manifest.Manifest) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range []*manifest.Manifest{before, after} {
		for _, e := range m.Packages {
			env := e.EnvName()
			if seen[env] {
				continue
			}
			seen[env] = true
			a, okA := before.Lookup(env)
			b, okB := after.Lookup(env)
			if okA != okB || a.Package != b.Package || a.Stage != b.Stage || !a.Rollout.Equal(b.Rollout) {
				out = append(out, env)
			}
		}
	}
	return out
}

// rolloutGuard returns the check that refuses e when it moves an env under
// an active rollout other than e.Rollout (or, with e.AbortRollout, aborts
// that rollout first), and a func returning the rollouts it aborted. It
// lists the current-rollout markers at most once per Edit (one request),
// and reads a server's status for its groups and a marker's record only
// when a moved env needs them.
func (w *Writer) rolloutGuard(e Edit) (func(ctx context.Context, before, after *manifest.Manifest) error, func() []string) {
	var (
		listed  bool
		current map[string]blobstore.Current // by "group/env"
		groups  []string                     // the target's: itself, or a server's from its status
		aborted []string
	)
	return func(ctx context.Context, before, after *manifest.Manifest) error {
		envs := moved(before, after)
		if len(envs) == 0 {
			return nil
		}
		if !listed {
			curs, err := w.store.ListCurrentRollouts(ctx)
			if err != nil {
				return fmt.Errorf("fleet: rollouts: %w", err)
			}
			current = map[string]blobstore.Current{}
			for _, c := range curs {
				current[c.Group+"/"+c.Env] = c
			}
			switch {
			case len(current) == 0:
			case e.Target.IsGroup():
				groups = []string{e.Target.Name}
			default:
				st, err := w.store.ReadStatus(ctx, e.Target.Name)
				if err == nil {
					groups = st.GroupNames()
				}
			}
			listed = true
		}
		for _, g := range groups {
			for _, env := range envs {
				c, ok := current[g+"/"+env]
				if !ok {
					continue
				}
				id, state, err := w.activeRollout(ctx, c)
				if err != nil {
					return err
				}
				if !state.Active() || id == e.Rollout {
					continue
				}
				if !e.AbortRollout || w.abort == nil {
					return &RolloutActiveError{Target: e.Target, Group: g, Env: env, ID: id, State: state}
				}
				if err := w.abort(ctx, g, env, id, e.User); err != nil {
					return fmt.Errorf("fleet: abort rollout %s of group %s env %s: %w", id, g, env, err)
				}
				w.log.Info("rollout aborted for a deploy", "rollout", id, "user", e.User)
				aborted = append(aborted, id)
			}
		}
		return nil
	}, func() []string { return aborted }
}

// activeRollout returns the rollout c names and its state, remembering a
// rollout that has ended by the marker's version (an ended rollout never
// becomes active again, and a new one moves the marker). A record that is
// missing or invalid counts as not active: its controller does not drive
// it, and a deploy is how an operator moves on.
func (w *Writer) activeRollout(ctx context.Context, c blobstore.Current) (string, manifest.RolloutState, error) {
	key := c.Group + "/" + c.Env + "@" + string(c.Version)
	w.mu.Lock()
	id, ended := w.ended[key]
	w.mu.Unlock()
	if ended {
		return id, manifest.RolloutSucceeded, nil
	}
	rc, err := w.store.ReadCurrentRollout(ctx, c.Group, c.Env)
	if err != nil || rc.ID == "" {
		return "", "", nil
	}
	r, v, err := w.store.ReadRollout(ctx, blobstore.RolloutRef{Group: c.Group, Env: c.Env, ID: rc.ID})
	switch {
	case errors.Is(err, blobstore.ErrNotFound) || err != nil && v != "":
		return rc.ID, manifest.RolloutInvalid, nil
	case err != nil:
		return "", "", fmt.Errorf("fleet: rollouts: %w", err)
	}
	if !r.State.Active() && rc.Version == c.Version {
		w.mu.Lock()
		w.ended[key] = r.ID
		w.mu.Unlock()
	}
	return r.ID, r.State, nil
}

// Allows reports, before anything is written, whether a change that puts
// app on t could pass Edit's allow-list: the push config lists t and
// allows app there, or, with no config, t's manifest exists. The error
// wraps ErrNotAllowed. release calls it before it uploads, so that a
// refused -deploy stores nothing.
func (w *Writer) Allows(ctx context.Context, t manifest.Target, app string) error {
	if err := t.Check(); err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	conf, _, err := w.Config(ctx)
	if err != nil {
		return fmt.Errorf("fleet: push config: %w", err)
	}
	if conf == nil {
		changed, _, err := w.store.ChangedManifest(ctx, t, "")
		if err != nil {
			return err
		}
		if !changed { // no manifest
			return fmt.Errorf("fleet: %s has no manifest, and there is no push config (%s) to allow one: %w", t, blobstore.PushConfigKey, ErrNotAllowed)
		}
		return nil
	}
	switch {
	case !conf.Lists(t):
		return fmt.Errorf("fleet: %s is not in the push config (%s): %w", t, blobstore.PushConfigKey, ErrNotAllowed)
	case !conf.Allowed(t, app):
		return fmt.Errorf("fleet: app %s is not allowed on %s: %w", app, t, ErrNotAllowed)
	}
	return nil
}

// packageExists reports an error wrapping ErrNoPackage unless p is in the
// bucket; a package seen once is remembered.
func (w *Writer) packageExists(ctx context.Context, p manifest.PackageName) error {
	w.mu.Lock()
	known := w.exists[p.String()]
	w.mu.Unlock()
	if known {
		return nil
	}
	if _, err := w.store.StatPackage(ctx, p); err != nil {
		if errors.Is(err, blobstore.ErrNotFound) {
			return ErrNoPackage
		}
		return fmt.Errorf("check package: %w", err)
	}
	w.mu.Lock()
	w.exists[p.String()] = true
	w.mu.Unlock()
	return nil
}

// written does what follows every write: the log line, the audit record
// and the nudge. Their failures are logged and kept in c.
func (w *Writer) written(ctx context.Context, e Edit, c *Change) {
	kind, name := string(e.Target.Kind), e.Target.Name
	w.log.Info("manifest written", kind, name, "user", e.User, "action", e.Action, "revision", c.After.Revision)
	ctx = context.WithoutCancel(ctx)
	rec := &manifest.AuditRecord{Time: w.now().UTC(), User: e.User, Action: e.Action, Before: c.Before, After: c.After}
	if e.Target.IsGroup() {
		rec.Group = name
	} else {
		rec.Server = name
	}
	if err := w.store.AppendAudit(ctx, rec); err != nil {
		c.AuditErr = err
		w.log.Error("audit record not written", kind, name, "err", err)
	}
	if w.nudger == nil {
		return
	}
	nctx, cancel := context.WithTimeout(ctx, nudgeTimeout)
	defer cancel()
	var err error
	if e.Target.IsGroup() {
		members := 0
		if w.members != nil {
			members = w.members(name)
		}
		err = w.nudger.NudgeGroup(nctx, name, members)
	} else {
		err = w.nudger.Nudge(nctx, name)
	}
	if err != nil {
		c.NudgeErr = err
		w.log.Warn("nudge failed", kind, name, "err", err)
	}
}

// PutConfig replaces the push config with c, only if the stored one is at
// ifVersion ("" = there is none), and records the change under
// config/audit/. It returns the new version; the error wraps
// blobstore.ErrConflict when the config changed meanwhile.
func (w *Writer) PutConfig(ctx context.Context, user string, c *manifest.PushConfig, ifVersion blobstore.Version) (blobstore.Version, error) {
	before, v, err := w.store.ReadPushConfig(ctx)
	if err != nil && v == "" {
		return "", err
	}
	if v != ifVersion {
		return "", fmt.Errorf("fleet: push config changed since it was read: %w", blobstore.ErrConflict)
	}
	nv, err := w.store.WritePushConfig(ctx, c, ifVersion)
	if err != nil {
		return "", err
	}
	w.log.Info("push config written", "user", user, "servers", len(c.Servers))
	rec := &manifest.AuditRecord{Time: w.now().UTC(), User: user, Action: "put push config", Config: true, ConfigBefore: before, ConfigAfter: c}
	if err := w.store.AppendAudit(context.WithoutCancel(ctx), rec); err != nil {
		w.log.Error("audit record not written", "config", blobstore.PushConfigKey, "err", err)
	}
	return nv, nil
}

// ConfigHistory returns up to limit records of push config changes, newest
// first.
func (w *Writer) ConfigHistory(ctx context.Context, limit int) ([]*manifest.AuditRecord, error) {
	return w.store.ListConfigAudit(ctx, limit)
}

// CheckStore runs store.CheckConditionalWrites once, as every program that
// changes desired state must before it writes: on a store that ignores
// If-Match and If-None-Match, concurrent editors lose updates while each
// is told it succeeded. Such a store is refused with an error wrapping
// blobstore.ErrUnconditionalStore, unless allow is set (a setup with a
// single writer), when it is only logged as a warning. Other failures of
// the probe are returned as they are.
func CheckStore(ctx context.Context, store *blobstore.Store, allow bool, log *slog.Logger) error {
	err := store.CheckConditionalWrites(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, blobstore.ErrUnconditionalStore) && allow:
		log.Warn("UNSAFE: the store does not honour conditional writes; concurrent edits of a manifest will be lost without an error. Run a single writer.", "bucket", store.URL(), "err", err)
		return nil
	case errors.Is(err, blobstore.ErrUnconditionalStore):
		return fmt.Errorf("%w (%s); use a store that does, or -allow-unconditional-store for a single writer", err, store.URL())
	}
	return err
}
