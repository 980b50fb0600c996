package rollout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/manifest"
)

// Errors of Driver's methods (wrapped).
var (
	// ErrActive: the group env has a running or paused rollout already.
	ErrActive = errors.New("a rollout of this group env is active")
	// ErrNotActive: a command for a rollout that has ended, or one that
	// does not apply in its state (resume of a running rollout).
	ErrNotActive = errors.New("the rollout is not in a state that allows this")
	// ErrStrategy: the strategy is invalid, or asks for nothing to do.
	ErrStrategy = errors.New("invalid rollout strategy")
)

// DefaultLease is how long a controller holds a rollout without renewing.
const DefaultLease = 30 * time.Second

// Driver starts, drives and commands rollouts. It is safe for concurrent
// use; any number of Drivers (pushui replicas) may run on one bucket, and
// each rollout is driven by one at a time (Tick).
type Driver struct {
	Store *blobstore.Store
	// Fleet writes the group manifests: the one desired-state code path,
	// with its allow-list, audit and nudge.
	Fleet *fleet.Writer
	// Holder names this controller in leases (a pushui replica's host and
	// process, say); required.
	Holder string
	// Lease is how long a lease lasts; 0 means DefaultLease.
	Lease time.Duration
	// Members returns the members of group as their statuses show them.
	Members func(ctx context.Context, group string) ([]Member, error)
	// Refresh, when set, is called once per Tick that has a running
	// rollout, before Members: a controller that caches the statuses
	// (pushui) refreshes them there, and pays nothing while no rollout runs.
	Refresh func(ctx context.Context) error
	// Now returns the time; nil means time.Now.
	Now func() time.Time
	// Log receives one line per decision; nil discards.
	Log *slog.Logger
}

func (d *Driver) now() time.Time {
	if d.Now != nil {
		return d.Now().UTC()
	}
	return time.Now().UTC()
}

func (d *Driver) lease() time.Duration {
	if d.Lease > 0 {
		return d.Lease
	}
	return DefaultLease
}

func (d *Driver) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Start begins a rollout of s (with its defaults) by user: it records it
// under rollouts/{group}/{env}/{id}.json and writes the first step into
// the group's manifest (the canaries, the first wave, or with stage_first
// the staging). The error wraps ErrActive when the group env has an active
// rollout, ErrStrategy for a bad strategy, and fleet's errors for a write
// the push config refuses.
func (d *Driver) Start(ctx context.Context, s manifest.RolloutStrategy, user string) (*manifest.RolloutRecord, error) {
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStrategy, err)
	}
	recs, _, err := d.Store.ListRollouts(ctx, s.Group)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if r.Strategy.Env == s.Env && r.State.Active() {
			return nil, fmt.Errorf("rollout: %s of group %s env %s is %s: %w", r.ID, s.Group, s.Env, r.State, ErrActive)
		}
	}
	m, _, err := d.Store.ReadManifest(ctx, manifest.Group(s.Group))
	if err != nil {
		return nil, err
	}
	base, had := m.Lookup(s.Env)
	if !had {
		base = manifest.Entry{Package: s.Package}
		if s.Env != s.Package.App {
			base.Env = s.Env
		}
	}
	if had && base.Package == s.Package && base.Rollout == nil {
		return nil, fmt.Errorf("%w: group %s already serves %s", ErrStrategy, s.Group, s.Package)
	}
	members, err := d.Members(ctx, s.Group)
	if err != nil {
		return nil, err
	}
	now := d.now()
	rec := &manifest.RolloutRecord{ID: newID(now), Strategy: s, State: manifest.RolloutRunning, Created: now, Updated: now,
		Lease: manifest.RolloutLease{Holder: d.Holder, Expires: now.Add(d.lease())}}
	if had {
		rec.Previous = base.Package
		if base.Rollout != nil {
			rec.Previous = base.Rollout.Previous
		}
	}
	var step manifest.RolloutStep
	stage := false
	switch {
	case s.StageFirst && had:
		rec.Staging, stage = true, true
	case s.Canary > 0 && had:
		step.Canaries = Canaries(rec.ID, members, s.Canary)
	default:
		step.Percent = s.Steps[0]
	}
	step.Started = now
	rec.History = []manifest.RolloutStep{step}
	if _, err := d.Store.WriteRollout(ctx, rec, ""); err != nil {
		return nil, err
	}
	e := Entry(rec, base, step.Percent, step.Canaries, stage)
	if err := d.write(ctx, rec, &e, false, user, "rollout "+rec.ID+": start ("+describeStep(rec)+")"); err != nil {
		return nil, err
	}
	d.log().Info("rollout started", "rollout", rec.ID, "group", s.Group, "env", s.Env, "package", s.Package.String(), "step", describeStep(rec))
	return rec, nil
}

// newID names a rollout: the time and a random suffix (its key holds the
// group and env).
func newID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(now.Format("20060102t150405")) + "-" + hex.EncodeToString(b[:])
}

func describeStep(r *manifest.RolloutRecord) string {
	st := r.History[r.Step]
	if st.Label() == "canaries" {
		return "canaries " + strings.Join(st.Canaries, ", ")
	}
	return st.Label()
}

// write applies a decision to the group's manifest: the entry for the
// rollout's env, or its removal, re-applied when another writer got in
// between.
func (d *Driver) write(ctx context.Context, r *manifest.RolloutRecord, e *manifest.Entry, remove bool, user, action string) error {
	if e == nil && !remove {
		return nil
	}
	env := r.Strategy.Env
	_, err := d.Fleet.Edit(ctx, fleet.Edit{Target: manifest.Group(r.Strategy.Group), User: user, Action: action, Latest: true,
		Apply: func(m *manifest.Manifest) error {
			i := slices.IndexFunc(m.Packages, func(x manifest.Entry) bool { return x.EnvName() == env })
			switch {
			case remove && i >= 0:
				m.Packages = slices.Delete(m.Packages, i, i+1)
			case remove:
			case i >= 0:
				m.Packages[i] = *e
			default:
				m.Packages = append(m.Packages, *e)
			}
			return nil
		}})
	return err
}

// Tick drives every active rollout one move: for each one no other
// controller holds (or whose lease ran out) it takes or renews the lease
// (a conditional write of the record), reads the members, decides
// (Advance), writes the group's manifest when the step changes, and writes
// the record. A record another controller changed meanwhile is left to it.
// The errors of each rollout are joined.
func (d *Driver) Tick(ctx context.Context) error {
	recs, vs, err := d.Store.ListRollouts(ctx, "")
	if err != nil {
		return err
	}
	var errs []error
	refreshed := false
	for i, r := range recs {
		if r.State != manifest.RolloutRunning {
			continue
		}
		if !refreshed && d.Refresh != nil {
			if err := d.Refresh(ctx); err != nil {
				return err
			}
			refreshed = true
		}
		if err := d.tick(ctx, r, vs[i]); err != nil {
			errs = append(errs, fmt.Errorf("rollout %s: %w", r.ID, err))
		}
	}
	return errors.Join(errs...)
}

func (d *Driver) tick(ctx context.Context, r *manifest.RolloutRecord, v blobstore.Version) error {
	now := d.now()
	mine := r.Lease.Holder == d.Holder
	if !mine && now.Before(r.Lease.Expires) {
		return nil // another controller drives it
	}
	if !mine || r.Lease.Expires.Sub(now) < d.lease()/2 {
		if !mine {
			d.log().Info("rollout lease taken", "rollout", r.ID, "from", r.Lease.Holder)
		}
		r.Lease = manifest.RolloutLease{Holder: d.Holder, Expires: now.Add(d.lease())}
		nv, err := d.Store.WriteRollout(ctx, r, v)
		if errors.Is(err, blobstore.ErrConflict) {
			return nil // another controller got it first
		}
		if err != nil {
			return err
		}
		v = nv
	}
	m, _, err := d.Store.ReadManifest(ctx, manifest.Group(r.Strategy.Group))
	if err != nil {
		return err
	}
	base, _ := m.Lookup(r.Strategy.Env)
	members, err := d.Members(ctx, r.Strategy.Group)
	if err != nil {
		return err
	}
	dec := Advance(*r, base, members, now)
	if dec.Entry != nil || dec.Remove {
		if err := d.write(ctx, &dec.Record, dec.Entry, dec.Remove, d.Holder, "rollout "+r.ID+": "+outcome(&dec.Record)); err != nil {
			return err
		}
		d.log().Info("rollout moved", "rollout", r.ID, "state", string(dec.Record.State), "step", describeStep(&dec.Record), "reason", dec.Record.Reason)
	}
	if _, err := d.Store.WriteRollout(ctx, &dec.Record, v); err != nil && !errors.Is(err, blobstore.ErrConflict) {
		return err
	}
	return nil
}

func outcome(r *manifest.RolloutRecord) string {
	if r.State != manifest.RolloutRunning {
		s := string(r.State)
		if r.Reason != "" {
			s += ": " + r.Reason
		}
		return s
	}
	return describeStep(r)
}

// Command applies an operator's command to a rollout: pause (running →
// paused), resume (paused → running; a rollout paused after its canaries
// goes on to its first wave), promote (every member on the new build now:
// succeeded), revert (every member back on the previous build), abort
// (stop where it is: members stay on their sides). It is a conditional
// write of the record; the error wraps ErrNotActive when the rollout's
// state does not allow the command, blobstore.ErrNotFound when there is
// no such rollout, blobstore.ErrConflict when it changed meanwhile.
func (d *Driver) Command(ctx context.Context, group, env, id, cmd, user string) (*manifest.RolloutRecord, error) {
	r, v, err := d.Store.ReadRollout(ctx, group, env, id)
	if err != nil {
		return nil, err
	}
	now := d.now()
	dec := Decision{Record: *r}
	rec := &dec.Record
	rec.Updated = now
	m, _, err := d.Store.ReadManifest(ctx, manifest.Group(group))
	if err != nil {
		return nil, err
	}
	base, _ := m.Lookup(env)
	switch {
	case cmd == "pause" && r.State == manifest.RolloutRunning:
		rec.State, rec.Reason = manifest.RolloutPaused, "paused by "+user
	case cmd == "resume" && r.State == manifest.RolloutPaused:
		rec.State, rec.Reason = manifest.RolloutRunning, ""
		if st := rec.History[rec.Step]; st.Outcome == "done" {
			dec = next(dec, base, nil, now)
		}
	case cmd == "promote" && r.State.Active():
		rec.State, rec.Reason = manifest.RolloutSucceeded, "promoted by "+user
		e := base
		e.Package, e.Rollout, e.Stage = rec.Strategy.Package, nil, manifest.PackageName{}
		dec.Entry = &e
	case cmd == "revert" && (r.State.Active() || r.State == manifest.RolloutFailed):
		Revert(&dec, base)
		rec.Reason = "reverted by " + user
	case cmd == "abort" && r.State.Active():
		rec.State, rec.Reason = manifest.RolloutAborted, "aborted by "+user
	case !slices.Contains([]string{"pause", "resume", "promote", "revert", "abort"}, cmd):
		return nil, fmt.Errorf("%w: unknown command %q", ErrNotActive, cmd)
	default:
		return nil, fmt.Errorf("rollout %s is %s: cannot %s: %w", id, r.State, cmd, ErrNotActive)
	}
	if _, err := d.Store.WriteRollout(ctx, rec, v); err != nil {
		return nil, err
	}
	if err := d.write(ctx, rec, dec.Entry, dec.Remove, user, "rollout "+id+": "+cmd); err != nil {
		return nil, err
	}
	d.log().Info("rollout command", "rollout", id, "command", cmd, "user", user, "state", string(rec.State))
	return rec, nil
}

// BucketMembers returns a Driver.Members that reads a group's members from
// the bucket: one listing of status/ per call (a request per thousand
// hosts), and a read of each status whose content changed since the last
// call (a heartbeat only moves its time, which the listing carries),
// keeping the hosts whose status names the group. It suits a controller
// that holds no cache of its own (release -rollout, a benchmark); pushui
// uses its cache instead. The function is safe for concurrent use.
func BucketMembers(store *blobstore.Store, now func() time.Time) func(ctx context.Context, group string) ([]Member, error) {
	type seen struct {
		digest string
		status *manifest.Status
	}
	var mu sync.Mutex
	known := map[string]seen{}
	return func(ctx context.Context, group string) ([]Member, error) {
		listed, err := store.ListStatuses(ctx)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		var out []Member
		next := make(map[string]seen, len(listed))
		for _, l := range listed {
			k, ok := known[l.Name]
			if !ok || k.digest == "" || k.digest != l.Digest {
				st, err := store.ReadStatus(ctx, l.Name)
				if errors.Is(err, blobstore.ErrNotFound) {
					continue
				}
				if err != nil {
					return nil, err
				}
				k = seen{l.Digest, st}
			} else {
				cp := *k.status
				cp.Time = l.Modified.UTC() // a heartbeat: the same bytes, written again
				k.status = &cp
			}
			next[l.Name] = k
			if k.status.InGroup(group) {
				out = append(out, Member{Name: l.Name, Status: k.status, Stale: k.status.Stale(now())})
			}
		}
		known = next
		return out, nil
	}
}
