// Package rollout drives rollouts: a group env moving from one build to
// another in steps (canaries, then waves), gated by the members' health,
// with pause, abort, automatic revert and stage-then-flip, with the bucket
// as the only state (docs/design.md, "Rollouts").
//
// Each step is one write of the group's manifest: the entry carries the
// rollout (manifest.Rollout), from which every member decides its side by
// itself. The controller reads the members' statuses, decides with Advance
// (a pure function of the record, the statuses and the time) and writes
// the record and the manifest back. Driver does that for every active
// rollout, under a lease held in the record (a conditional write with an
// expiry), so that of many pushui replicas one at a time drives a rollout
// and another takes over when its holder dies.
package rollout

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pushpull/pushpull/manifest"
)

// Member is one member of the group, as its status shows it.
type Member struct {
	Name string
	// Status is the member's status, nil before its first report.
	Status *manifest.Status
	// Stale says the status is older than its heartbeat allows.
	Stale bool
}

// env returns the member's status of env, if reported.
func (m Member) env(env string) (manifest.EnvStatus, bool) {
	if m.Status == nil {
		return manifest.EnvStatus{}, false
	}
	return m.Status.Lookup(env)
}

// Decision is what Advance decided: the record as it now stands and, when
// the group's entry must change, the entry to write.
type Decision struct {
	Record manifest.RolloutRecord
	// Entry is the group manifest's new entry for the env; nil for none.
	Entry *manifest.Entry
	// Remove is set when the rollout leaves the entry as it was before it
	// began and the group had none (a revert of a first deploy).
	Remove bool
}

// Canaries picks the rollout's canaries among members: the n with the
// lowest place in it (manifest.Place), so that the first wave starts with
// them.
func Canaries(id string, members []Member, n int) []string {
	names := make([]string, len(members))
	for i, m := range members {
		names[i] = m.Name
	}
	slices.SortFunc(names, func(a, b string) int {
		pa, pb := manifest.Place(id, a), manifest.Place(id, b)
		switch {
		case pa < pb:
			return -1
		case pa > pb:
			return 1
		}
		return strings.Compare(a, b)
	})
	return names[:min(n, len(names))]
}

// Entry returns the group entry for record at percent (with the step's
// canaries), based on base, the entry as the group had it (its config,
// policy and health are kept).
func Entry(rec *manifest.RolloutRecord, base manifest.Entry, percent float64, canaries []string, stage bool) manifest.Entry {
	e := base
	e.Package = rec.Strategy.Package
	e.Restart = ""
	e.Rollout = &manifest.Rollout{ID: rec.ID, Previous: rec.Previous, Percent: percent, Canaries: slices.Clone(canaries)}
	e.Stage = manifest.PackageName{}
	if stage {
		e.Stage = rec.Strategy.Package
	}
	if rec.Previous.IsZero() {
		// Nothing to keep serving: every member takes the new build.
		e.Rollout = nil
	}
	return e
}

// Advance decides the next move of a running rollout from the members'
// statuses at now: wait, count the members of the current step that serve
// the new build healthy for min_healthy_time (done) and those that did
// not by healthy_deadline or failed outright (failures), fail (and revert
// with auto_revert) past max_failures or the progress deadline, move to
// the next step when the current one is done (pausing after the canaries
// when asked), and succeed after the last. base is the group's entry as
// it was before the rollout (its config and health). A record that is not
// running is returned as it is.
func Advance(rec manifest.RolloutRecord, base manifest.Entry, members []Member, now time.Time) Decision {
	d := Decision{Record: rec}
	r := &d.Record
	if r.State != manifest.RolloutRunning || r.Step < 0 || r.Step >= len(r.History) {
		return d
	}
	s := r.Strategy
	n := len(members)
	step := &r.History[r.Step]
	r.Updated = now

	if r.Staging {
		staged := 0
		for _, m := range members {
			if es, ok := m.env(s.Env); ok && (es.Staged == s.Package.String() || es.Serving == s.Package.String()) {
				staged++
			}
		}
		step.Hosts, step.Done = n, staged
		switch {
		case n == 0 && !s.AllowEmpty:
			if now.Sub(step.Started) > time.Duration(s.ProgressDeadline) {
				return fail(d, base, "group "+s.Group+" has no members (no host reports it)")
			}
			return d
		case staged >= s.MinStaged.Of(n):
			step.Ended, step.Outcome = now, manifest.StepStaged
			r.Staging = false
			return next(d, base, members, now)
		case now.Sub(step.Started) > time.Duration(s.ProgressDeadline):
			return fail(d, base, "staging: "+itoa(staged)+" of "+itoa(n)+" members staged the build by the progress deadline")
		}
		return d
	}

	rollout := &manifest.Rollout{ID: r.ID, Previous: r.Previous, Percent: step.Percent, Canaries: step.Canaries}
	var in, done, failed, suspect []string
	for _, m := range members {
		if !rollout.Takes(m.Name) && !r.Previous.IsZero() {
			continue
		}
		in = append(in, m.Name)
		es, ok := m.env(s.Env)
		why := distrust(m, r, now)
		if why != "" {
			suspect = append(suspect, m.Name+": "+why)
		}
		switch {
		case why == "" && ok && es.Desired == s.Package.String() && es.Serving == s.Package.String() && es.State == manifest.StateServing && healthyFor(es, time.Duration(s.MinHealthyTime), now):
			done = append(done, m.Name)
		case why == "" && ok && es.Desired == s.Package.String() && (es.State == manifest.StateFailed || es.State == manifest.StateRolledBack):
			failed = append(failed, m.Name) // its own deploy failed
		case m.Stale && !(ok && es.State == manifest.StateDeploying), now.Sub(step.Started) > time.Duration(s.HealthyDeadline):
			// Not there in time, not to be believed, or silent. A host
			// in the middle of an action writes no heartbeat until it
			// ends (a long POST_RESTART): the healthy deadline judges it.
			failed = append(failed, m.Name)
		}
	}
	// A named canary that no longer reports as a member (its status gone,
	// unreadable or no longer naming the group) is still the step's: it
	// cannot pass by vanishing.
	for _, c := range step.Canaries {
		if slices.Contains(in, c) {
			continue
		}
		in = append(in, c)
		suspect = append(suspect, c+": no status naming the group")
		if now.Sub(step.Started) > time.Duration(s.HealthyDeadline) {
			failed = append(failed, c)
		}
	}
	step.Hosts, step.Done, step.Failed, step.Suspect = len(in), len(done), failed, suspect
	switch {
	case len(failed) > s.MaxFailures.Of(n):
		step.Ended, step.Outcome = now, manifest.StepFailed
		return fail(d, base, hosts(len(failed))+" failed ("+strings.Join(failed, ", ")+"), more than max_failures "+itoa(s.MaxFailures.Of(n)))
	case n == 0 && !s.AllowEmpty:
		// No members: nothing has been shown to work. Wait for some.
		if now.Sub(step.Started) > time.Duration(s.ProgressDeadline) {
			step.Ended, step.Outcome = now, manifest.StepFailed
			return fail(d, base, "group "+s.Group+" has no members (no host reports it)")
		}
		return d
	case len(done) < len(in)-len(failed):
		if now.Sub(step.Started) > time.Duration(s.ProgressDeadline) {
			step.Ended, step.Outcome = now, manifest.StepFailed
			return fail(d, base, "no progress by the progress deadline")
		}
		return d // waiting
	}
	step.Ended, step.Outcome = now, manifest.StepDone
	switch {
	case n == 0:
		step.Outcome = manifest.StepEmpty
	case len(in) == 0:
		step.Outcome = manifest.StepSkipped
	}
	if step.Percent >= 100 {
		r.State = manifest.RolloutSucceeded
		e := base
		e.Package, e.Rollout, e.Stage, e.Restart = s.Package, nil, manifest.PackageName{}, ""
		d.Entry = &e
		return d
	}
	if len(step.Canaries) > 0 && step.Percent == 0 && s.PauseAfterCanary {
		r.State, r.Reason = manifest.RolloutPaused, "paused after the canaries"
		return d
	}
	return next(d, base, members, now)
}

// distrust returns why a member's status cannot count for the rollout at
// now, "" when it can: a status must be the member's own (its server
// field), claim no time in the future, and, when it reports the new build
// from the group's entry, report it under this rollout and since it
// began. A member with no status yet is not distrusted: it has not
// reported. Anyone who may write status/{server}.json can still write a
// status that passes (docs/operations.md).
func distrust(m Member, r *manifest.RolloutRecord, now time.Time) string {
	st := m.Status
	if st == nil {
		return ""
	}
	if st.Server != m.Name {
		return "its status names server " + strconv.Quote(st.Server)
	}
	if err := st.CheckTimes(now); err != nil {
		return "its status claims a time in the future"
	}
	es, ok := st.Lookup(r.Strategy.Env)
	if !ok || es.Serving != r.Strategy.Package.String() || es.Source != manifest.Group(r.Strategy.Group).Source() {
		return ""
	}
	switch {
	case !r.Previous.IsZero() && es.Rollout != r.ID:
		return "it reports the new build under rollout " + strconv.Quote(es.Rollout) + ", not this one"
	case es.Updated.Before(r.Created.Add(-manifest.ClockSkew)):
		return "it reports serving the new build since before the rollout began"
	}
	return ""
}

// next starts the step after the current one: the canaries when none ran
// yet, else the next share of the strategy's steps.
func next(d Decision, base manifest.Entry, members []Member, now time.Time) Decision {
	r := &d.Record
	s := r.Strategy
	cur := r.History[r.Step]
	st := manifest.RolloutStep{Started: now}
	switch {
	case cur.Outcome == manifest.StepStaged && s.Canary > 0 && len(members) > 0:
		st.Canaries = Canaries(r.ID, members, s.Canary)
	default:
		st.Percent = s.Steps[0]
		for _, p := range s.Steps {
			if p > cur.Percent {
				st.Percent = p
				break
			}
		}
		st.Canaries = cur.Canaries
	}
	r.History = append(r.History, st)
	r.Step = len(r.History) - 1
	e := Entry(r, base, st.Percent, st.Canaries, false)
	d.Entry = &e
	return d
}

// fail ends the rollout as failed, or reverted with auto_revert, which
// puts the previous build back in the entry for every member.
func fail(d Decision, base manifest.Entry, why string) Decision {
	r := &d.Record
	r.State, r.Reason = manifest.RolloutFailed, why
	if r.Strategy.AutoRevert {
		revert(&d, base)
	}
	return d
}

// revert sends every member back to the previous build: the entry as it
// was before the rollout, or none when there was none.
func revert(d *Decision, base manifest.Entry) {
	r := &d.Record
	r.State = manifest.RolloutReverted
	if r.Previous.IsZero() {
		d.Remove = true
		return
	}
	e := base
	e.Package, e.Rollout, e.Stage = r.Previous, nil, manifest.PackageName{}
	d.Entry = &e
}

// healthyFor reports whether es has served healthy for at least min at
// now: by its health check when the entry has one, else since its last
// change.
func healthyFor(es manifest.EnvStatus, min time.Duration, now time.Time) bool {
	if es.Healthy != nil {
		return *es.Healthy && now.Sub(es.HealthySince) >= min
	}
	return now.Sub(es.Updated) >= min
}

func itoa(n int) string { return strconv.Itoa(n) }

// hosts says "1 host" or "n hosts".
func hosts(n int) string {
	if n == 1 {
		return "1 host"
	}
	return itoa(n) + " hosts"
}
