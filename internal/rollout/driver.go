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
	// ErrStrategy: the strategy is invalid, or asks for nothing to do
	// (a group with no members, without allow_empty, among them).
	ErrStrategy = errors.New("invalid rollout strategy")
	// ErrInvalid: the rollout's record does not parse or contradicts
	// itself; the controller leaves it alone, and only abort applies.
	ErrInvalid = errors.New("the rollout record is invalid")
)

// Command is an operator's command to a rollout.
type Command string

// The commands, in the order pages offer them.
const (
	Pause   Command = "pause"
	Resume  Command = "resume"
	Promote Command = "promote"
	Abort   Command = "abort"
	Revert  Command = "revert"
)

// Commands returns the commands a rollout in state s accepts (Driver.Command
// may still refuse a revert of an ended rollout whose group has moved on):
// running: pause, promote, abort, revert; paused: resume, promote, abort,
// revert; failed and aborted: revert; invalid: abort.
func Commands(s manifest.RolloutState) []Command {
	switch s {
	case manifest.RolloutRunning:
		return []Command{Pause, Promote, Abort, Revert}
	case manifest.RolloutPaused:
		return []Command{Resume, Promote, Abort, Revert}
	case manifest.RolloutFailed, manifest.RolloutAborted:
		return []Command{Revert}
	case manifest.RolloutInvalid:
		return []Command{Abort}
	}
	return nil
}

// ParseCommand returns the command named s; the error wraps ErrNotActive.
func ParseCommand(s string) (Command, error) {
	switch c := Command(s); c {
	case Pause, Resume, Promote, Abort, Revert:
		return c, nil
	}
	return "", fmt.Errorf("%w: unknown command %q (pause, resume, promote, abort, revert)", ErrNotActive, s)
}

// DefaultLease is how long a controller holds a rollout without renewing.
const DefaultLease = 30 * time.Second

// startGrace is how long a current-rollout marker may name a record that
// does not exist yet (a start between its two writes) before a new start
// takes its place.
const startGrace = time.Minute

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
	// Lease is how long a lease lasts; 0 means DefaultLease. It is capped
	// at manifest.MaxRolloutLease.
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

	mu      sync.Mutex
	adopted bool
	// known is what Tick learnt of each group env's current rollout, by
	// "group/env": valid while the marker keeps its version.
	known map[string]knownCurrent
	// problems holds the invalid records already logged, with the reason
	// logged, so that each is logged once.
	problems map[string]string
}

// knownCurrent is one group env's current rollout as Tick last saw it.
type knownCurrent struct {
	version blobstore.Version // the marker's
	id      string
	ended   bool // the record has ended: nothing to read until the marker moves
}

func (d *Driver) now() time.Time {
	if d.Now != nil {
		return d.Now().UTC()
	}
	return time.Now().UTC()
}

func (d *Driver) lease() time.Duration {
	if d.Lease > 0 {
		return min(d.Lease, manifest.MaxRolloutLease)
	}
	return DefaultLease
}

func (d *Driver) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Run is the control loop: it calls Tick every tick until ctx ends, and
// then returns. A failed tick is logged and the loop goes on; the next
// tick retries what failed. Every controller (each pushui replica) runs
// one; the leases decide which of them moves each rollout.
func (d *Driver) Run(ctx context.Context, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := d.Tick(ctx); err != nil && ctx.Err() == nil {
				d.log().Warn("rollout tick failed", "err", err)
			}
		}
	}
}

// Start begins a rollout of s (with its defaults) by user: it makes it
// the group env's current rollout (a conditional write of
// rollouts/_current/{group}/{env}.json, so that of two starts at once one
// wins), records it under rollouts/{group}/{env}/{id}.json and writes the
// first step into the group's manifest (the canaries, the first wave, or
// with stage_first the staging). The error wraps ErrActive when the group
// env has an active rollout (naming it), ErrStrategy for a bad strategy or
// a group with no members (unless s.AllowEmpty), and fleet's errors for a
// write the push config refuses.
func (d *Driver) Start(ctx context.Context, s manifest.RolloutStrategy, user string) (*manifest.RolloutRecord, error) {
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStrategy, err)
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
	if len(members) == 0 && !s.AllowEmpty {
		return nil, fmt.Errorf("%w: group %s has no members (no host reports it; \"allow_empty\": true starts it anyway)", ErrStrategy, s.Group)
	}
	cur, err := d.free(ctx, s.Group, s.Env)
	if err != nil {
		return nil, err
	}
	now := d.now()
	rec := &manifest.RolloutRecord{ID: newID(now), Strategy: s, State: manifest.RolloutRunning, Created: now, Updated: now,
		Lease: manifest.RolloutLease{Holder: d.Holder, Expires: now.Add(d.lease())}}
	// The id first: the members' sides are a hash of it.
	if err := d.claimID(ctx, rec); err != nil {
		return nil, err
	}
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
	case s.Canary > 0 && had && len(members) > 0:
		step.Canaries = Canaries(rec.ID, members, s.Canary)
	default:
		step.Percent = s.Steps[0]
	}
	step.Started = now
	rec.History = []manifest.RolloutStep{step}
	if _, err := d.Store.WriteCurrentRollout(ctx, s.Group, s.Env, rec.ID, cur); err != nil {
		if errors.Is(err, blobstore.ErrConflict) {
			won, _ := d.Store.ReadCurrentRollout(ctx, s.Group, s.Env)
			return nil, fmt.Errorf("rollout: %s of group %s env %s started meanwhile: %w", won.ID, s.Group, s.Env, ErrActive)
		}
		return nil, err
	}
	if _, err := d.Store.WriteRollout(ctx, rec, ""); err != nil {
		return nil, err
	}
	e := Entry(rec, base, step.Percent, step.Canaries, stage)
	if err := d.write(ctx, rec, &e, false, user, "rollout "+rec.ID+": start ("+describeStep(rec)+")"); err != nil {
		// Nothing moved: the rollout ends here rather than run on an entry
		// it never wrote.
		rec.State, rec.Reason = manifest.RolloutFailed, "could not write the first step: "+err.Error()
		rec.Lease = manifest.RolloutLease{}
		if _, werr := d.Store.WriteRollout(context.WithoutCancel(ctx), rec, ""); werr != nil && !errors.Is(werr, blobstore.ErrConflict) {
			d.log().Error("rollout record not ended", "rollout", rec.ID, "err", werr)
		}
		return nil, err
	}
	d.log().Info("rollout started", "rollout", rec.ID, "group", s.Group, "env", s.Env, "package", s.Package.String(), "step", describeStep(rec))
	return rec, nil
}

// free returns the version of group env's current-rollout marker when a
// new rollout may take its place: there is none, it does not parse, its
// rollout has ended, or its record has been missing for startGrace. The
// error wraps ErrActive, naming the rollout, when the current one is
// active, starting, or invalid (to be aborted first).
func (d *Driver) free(ctx context.Context, group, env string) (blobstore.Version, error) {
	cur, err := d.Store.ReadCurrentRollout(ctx, group, env)
	switch {
	case err != nil && cur.Version == "":
		return "", err
	case err != nil:
		d.log().Warn("current rollout marker replaced", "group", group, "env", env, "err", err)
		return cur.Version, nil
	case cur.ID == "":
		return "", nil
	}
	ref := blobstore.RolloutRef{Group: group, Env: env, ID: cur.ID}
	old, v, err := d.Store.ReadRollout(ctx, ref)
	if errors.Is(err, blobstore.ErrNotFound) {
		aside, serr := d.Store.SetAside(ctx, ref)
		switch {
		case serr != nil:
			return "", serr
		case aside:
			return cur.Version, nil // aborted while invalid
		}
	}
	switch {
	case errors.Is(err, blobstore.ErrNotFound) && d.now().Sub(cur.Modified) < startGrace:
		return "", fmt.Errorf("rollout: %s of group %s env %s is starting: %w", cur.ID, group, env, ErrActive)
	case errors.Is(err, blobstore.ErrNotFound):
		return cur.Version, nil
	case err != nil && v != "":
		return "", fmt.Errorf("rollout: %s of group %s env %s is invalid, abort it first (%w): %w", cur.ID, group, env, err, ErrActive)
	case err != nil:
		return "", err
	case old.State.Active():
		return "", fmt.Errorf("rollout: %s of group %s env %s is %s: %w", old.ID, group, env, old.State, ErrActive)
	}
	return cur.Version, nil
}

// claimID makes rec's id its own across every group and env, drawing
// another while one is taken (ids are the time to the second and 24
// random bits, so a second draw is rare and a fourth never needed).
func (d *Driver) claimID(ctx context.Context, rec *manifest.RolloutRecord) error {
	for try := 0; ; try++ {
		err := d.Store.ClaimRolloutID(ctx, blobstore.RolloutRef{Group: rec.Strategy.Group, Env: rec.Strategy.Env, ID: rec.ID})
		if !errors.Is(err, blobstore.ErrConflict) || try == 3 {
			return err
		}
		rec.ID = newID(rec.Created)
	}
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
// between. It is the rollout's own write (fleet.Edit.Rollout), which the
// writer lets through while the rollout is active.
func (d *Driver) write(ctx context.Context, r *manifest.RolloutRecord, e *manifest.Entry, remove bool, user, action string) error {
	if e == nil && !remove {
		return nil
	}
	env := r.Strategy.Env
	_, err := d.Fleet.Edit(ctx, fleet.Edit{Target: manifest.Group(r.Strategy.Group), User: user, Action: action, Latest: true, Rollout: r.ID,
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

// Tick drives every running rollout one move. It lists the group envs'
// current-rollout markers (one request per thousand group envs) and reads
// the record of each that has not ended, so its cost follows the active
// rollouts, not the history. For each running one that no other
// controller holds (or whose lease ran out) it takes or renews the lease
// (a conditional write of the record), reads the members, decides
// (Advance), writes the group's manifest when the step changes, and writes
// the record. A record another controller changed meanwhile is left to
// it. An invalid record is logged once and left alone; a failure of one
// rollout, a panic included, is that rollout's error and never stops the
// others. The errors are joined.
func (d *Driver) Tick(ctx context.Context) error {
	if err := d.adopt(ctx); err != nil {
		return err
	}
	curs, err := d.Store.ListCurrentRollouts(ctx)
	if err != nil {
		return err
	}
	var errs []error
	refreshed := false
	for _, c := range curs {
		r, v := d.current(ctx, c)
		if r == nil || r.State != manifest.RolloutRunning {
			continue
		}
		if !refreshed && d.Refresh != nil {
			if err := d.Refresh(ctx); err != nil {
				return err
			}
			refreshed = true
		}
		if err := d.safeTick(ctx, r, v); err != nil {
			errs = append(errs, fmt.Errorf("rollout %s: %w", r.ID, err))
		}
	}
	return errors.Join(errs...)
}

// current returns the record of c's current rollout when it may need a
// move, reading only what changed since the last Tick: nil when it has
// ended, is missing or is invalid (logged once).
func (d *Driver) current(ctx context.Context, c blobstore.Current) (*manifest.RolloutRecord, blobstore.Version) {
	key := c.Group + "/" + c.Env
	d.mu.Lock()
	k, ok := d.known[key]
	d.mu.Unlock()
	if ok && k.version == c.Version && k.ended {
		return nil, ""
	}
	if !ok || k.version != c.Version {
		rc, err := d.Store.ReadCurrentRollout(ctx, c.Group, c.Env)
		if err != nil {
			d.problem(key, err)
			return nil, ""
		}
		k = knownCurrent{version: c.Version, id: rc.ID}
	}
	ref := blobstore.RolloutRef{Group: c.Group, Env: c.Env, ID: k.id}
	r, v, err := d.Store.ReadRollout(ctx, ref)
	if err == nil {
		err = r.CheckLease(d.now())
	}
	switch {
	case errors.Is(err, blobstore.ErrNotFound):
		r = nil // a start between its writes, or one that died there
	case err != nil:
		d.problem(ref.Cursor(), err)
		r = nil
	default:
		k.ended = !r.State.Active()
	}
	d.mu.Lock()
	if d.known == nil {
		d.known = map[string]knownCurrent{}
	}
	d.known[key] = k
	d.mu.Unlock()
	return r, v
}

// problem logs err for what once, while it stays the same.
func (d *Driver) problem(what string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.problems == nil {
		d.problems = map[string]string{}
	}
	if d.problems[what] == err.Error() {
		return
	}
	d.problems[what] = err.Error()
	d.log().Error("rollout skipped", "rollout", what, "err", err)
}

// adopt, once per Driver, makes each group env's newest record its current
// rollout where the bucket has no marker for it yet (records written
// before markers existed, or by hand): one listing of rollouts/ per
// process, after which Tick reads markers only.
func (d *Driver) adopt(ctx context.Context) error {
	d.mu.Lock()
	done := d.adopted
	d.mu.Unlock()
	if done {
		return nil
	}
	refs, err := d.Store.ListRolloutRefs(ctx, "")
	if err != nil {
		return err
	}
	curs, err := d.Store.ListCurrentRollouts(ctx)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, c := range curs {
		have[c.Group+"/"+c.Env] = true
	}
	for _, ref := range refs { // newest first
		key := ref.Group + "/" + ref.Env
		if have[key] {
			continue
		}
		have[key] = true
		if r, _, err := d.Store.ReadRollout(ctx, ref); err != nil || !r.State.Active() {
			continue
		}
		if _, err := d.Store.WriteCurrentRollout(ctx, ref.Group, ref.Env, ref.ID, ""); err != nil && !errors.Is(err, blobstore.ErrConflict) {
			return err
		}
		d.log().Info("rollout adopted", "rollout", ref.ID, "group", ref.Group, "env", ref.Env)
	}
	d.mu.Lock()
	d.adopted = true
	d.mu.Unlock()
	return nil
}

// safeTick is tick, with a panic turned into the rollout's error: nothing
// one record does may take the controller down.
func (d *Driver) safeTick(ctx context.Context, r *manifest.RolloutRecord, v blobstore.Version) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error: %v", p)
			d.problem(blobstore.RefOf(r).Cursor(), err)
		}
	}()
	return d.tick(ctx, r, v)
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
	if !dec.Record.State.Active() {
		dec.Record.Lease = manifest.RolloutLease{}
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

// Get returns the rollout at ref as pages and the API show it: the
// record, or for a record that does not parse, contradicts itself or holds
// a lease no controller takes, one in state invalid with the reason (and
// the ref's group, env and ID), so that it can be seen and aborted. Its
// error is a bucket error, or wraps blobstore.ErrNotFound.
func (d *Driver) Get(ctx context.Context, ref blobstore.RolloutRef) (*manifest.RolloutRecord, blobstore.Version, error) {
	r, v, err := d.Store.ReadRollout(ctx, ref)
	return d.view(ref, r, v, err)
}

// Find returns where rollout id's record is (blobstore.FindRollout): ids
// are unique across groups and envs. The error wraps
// blobstore.ErrNotFound when no rollout has it.
func (d *Driver) Find(ctx context.Context, id string) (blobstore.RolloutRef, error) {
	return d.Store.FindRollout(ctx, id)
}

// view is Get's judgement of one read.
func (d *Driver) view(ref blobstore.RolloutRef, r *manifest.RolloutRecord, v blobstore.Version, err error) (*manifest.RolloutRecord, blobstore.Version, error) {
	if err == nil {
		err = r.CheckLease(d.now())
	}
	switch {
	case err == nil:
		return r, v, nil
	case v == "":
		return nil, "", err
	}
	return Invalid(ref, err), v, nil
}

// Invalid returns the stand-in of an invalid record at ref: state invalid,
// the reason, and what the ref names.
func Invalid(ref blobstore.RolloutRef, why error) *manifest.RolloutRecord {
	return &manifest.RolloutRecord{ID: ref.ID, Strategy: manifest.RolloutStrategy{Group: ref.Group, Env: ref.Env},
		State: manifest.RolloutInvalid, Reason: why.Error()}
}

// List returns a page of group's rollouts (every group's when ""), newest
// first (blobstore.Store.ListRollouts), each as Get shows it, and the
// cursor of the next page.
func (d *Driver) List(ctx context.Context, group, after string, limit int) ([]*manifest.RolloutRecord, string, error) {
	page, next, err := d.Store.ListRollouts(ctx, group, after, limit)
	if err != nil {
		return nil, "", err
	}
	out := make([]*manifest.RolloutRecord, 0, len(page))
	for _, l := range page {
		r, _, err := d.view(l.RolloutRef, l.Record, l.Version, l.Err)
		if err != nil {
			r = Invalid(l.RolloutRef, err) // a read that failed: shown, not fatal
		}
		out = append(out, r)
	}
	return out, next, nil
}

// Command applies an operator's command to a rollout: pause (running →
// paused), resume (paused → running; a rollout paused after its canaries
// goes on to its first wave), promote (every member on the new build now:
// succeeded), revert (every member back on the previous build; also after
// it failed or was aborted, while the group's entry is still the
// rollout's), abort (stop where it is: members stay on their sides). It is
// a conditional write of the record. An invalid record accepts abort only:
// a lease no controller takes is dropped, and a record that does not parse
// is moved aside (blobstore.Store.SetAsideRollout); the rollout returned
// for it is the stand-in Invalid gives, aborted. The error wraps
// ErrNotActive when the rollout's state does not allow the command,
// ErrInvalid for another command of an invalid record,
// blobstore.ErrNotFound when there is no such rollout,
// blobstore.ErrConflict when it changed meanwhile.
func (d *Driver) Command(ctx context.Context, ref blobstore.RolloutRef, cmd Command, user string) (*manifest.RolloutRecord, error) {
	if _, err := ParseCommand(string(cmd)); err != nil {
		return nil, err
	}
	r, v, err := d.Store.ReadRollout(ctx, ref)
	if err != nil && v == "" {
		return nil, err
	}
	if err != nil {
		if cmd != Abort {
			return nil, fmt.Errorf("rollout %s: %w (only abort applies): %w", ref.ID, err, ErrInvalid)
		}
		aside, err := d.Store.SetAsideRollout(ctx, ref)
		if err != nil {
			return nil, err
		}
		d.log().Info("invalid rollout aborted", "rollout", ref.ID, "user", user, "moved_to", aside)
		inv := Invalid(ref, fmt.Errorf("aborted by %s: the invalid record was moved to %s", user, aside))
		inv.State = manifest.RolloutAborted
		return inv, nil
	}
	now := d.now()
	dec := Decision{Record: *r}
	rec := &dec.Record
	rec.Updated = now
	if err := r.CheckLease(now); err != nil {
		if cmd != Abort {
			return nil, fmt.Errorf("rollout %s: %w (only abort applies): %w", ref.ID, err, ErrInvalid)
		}
		rec.Lease = manifest.RolloutLease{}
	}
	m, _, err := d.Store.ReadManifest(ctx, manifest.Group(ref.Group))
	if err != nil {
		return nil, err
	}
	base, _ := m.Lookup(ref.Env)
	ours := base.Rollout != nil && base.Rollout.ID == r.ID || r.Previous.IsZero() && base.Package == r.Strategy.Package
	if !slices.Contains(Commands(r.State), cmd) {
		return nil, fmt.Errorf("rollout %s is %s: cannot %s: %w", ref.ID, r.State, cmd, ErrNotActive)
	}
	switch cmd {
	case Pause:
		rec.State, rec.Reason = manifest.RolloutPaused, "paused by "+user
	case Resume:
		rec.State, rec.Reason = manifest.RolloutRunning, ""
		if st := rec.History[rec.Step]; st.Outcome == manifest.StepDone {
			dec = next(dec, base, nil, now)
		}
	case Promote:
		rec.State, rec.Reason = manifest.RolloutSucceeded, "promoted by "+user
		e := base
		e.Package, e.Rollout, e.Stage = rec.Strategy.Package, nil, manifest.PackageName{}
		dec.Entry = &e
	case Revert:
		if !r.State.Active() && !ours {
			return nil, fmt.Errorf("rollout %s is %s and the group's entry for %s is no longer its own: cannot revert: %w", ref.ID, r.State, ref.Env, ErrNotActive)
		}
		revert(&dec, base)
		rec.Reason = "reverted by " + user
	case Abort:
		rec.State, rec.Reason = manifest.RolloutAborted, "aborted by "+user
	}
	if !rec.State.Active() {
		rec.Lease = manifest.RolloutLease{}
	}
	if _, err := d.Store.WriteRollout(ctx, rec, v); err != nil {
		return nil, err
	}
	if err := d.write(ctx, rec, dec.Entry, dec.Remove, user, "rollout "+ref.ID+": "+string(cmd)); err != nil {
		return nil, err
	}
	d.log().Info("rollout command", "rollout", ref.ID, "command", string(cmd), "user", user, "state", string(rec.State))
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
				st, v, err := readStatus(ctx, store, l.Name)
				if errors.Is(err, blobstore.ErrNotFound) || err != nil && v {
					continue // gone, or not to be believed: not known as a member
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

// readStatus reads server's status; invalid reports an error of the
// status itself (it does not parse, or names another server) rather than
// of the bucket.
func readStatus(ctx context.Context, store *blobstore.Store, server string) (st *manifest.Status, invalid bool, err error) {
	st, err = store.ReadStatus(ctx, server)
	invalid = errors.Is(err, manifest.ErrInconsistentStatus) || errors.Is(err, manifest.ErrInvalidStatus)
	return st, invalid, err
}
