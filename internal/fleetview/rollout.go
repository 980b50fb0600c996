package fleetview

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pushpull/pushpull/internal/rollout"
	"github.com/pushpull/pushpull/manifest"
)

// rolloutPage is one rollout as its page shows it: the record, and the
// group's members as their statuses show them against it.
type RolloutView struct {
	Group, Env, ID string
	ShowEnv        bool // the env is not named after the app
	Record         *manifest.RolloutRecord
	Package        *Label
	Previous       *Label
	StateClass     string
	Created        Moment
	Updated        Moment
	Strategy       []string // the strategy, one "name value" per item
	Steps          []rolloutStepView
	// Members is the group's size; OnNew the members whose side of the
	// current step is the new build, Serving those serving it (healthy
	// when the entry has a health check). Bar is Serving as a percentage
	// Of Members.
	Members, OnNew, Serving int
	Bar                     int
	// New and Old count the members on each side by state.
	New, Old []stateCount
	// Failing are the members of the new side that failed, or are stale,
	// with their error and the script's output (at most failingShown).
	Failing     []failingHost
	FailingMore int
	Commands    []rollout.Command // what the operator may do now
}

// rolloutStepView is one row of the steps table.
type rolloutStepView struct {
	Label          string
	Hosts, Done    int
	Failed         []string
	Outcome        string
	Started, Ended Moment
	Current        bool
}

// failingHost is a host that failed a step of the rollout, or a member of
// the new side that is not getting there: in which step of the rollout,
// At which of its own steps, with what exit code, why, and the first
// lines of the script's output.
type failingHost struct {
	Name, State, Why string
	RolloutStep      string
	Step             manifest.Step
	DeployID         string
	ExitCode         int
	Output           string
	Updated          Moment
}

// stepLabel names step i of rec as the steps table does.
func stepLabel(rec *manifest.RolloutRecord, i int) string {
	h := rec.History[i]
	switch {
	case h.Outcome == manifest.StepStaged || rec.Staging && i == rec.Step:
		return "stage on every member"
	case h.Percent == 0 && len(h.Canaries) > 0:
		return "canaries: " + strings.Join(h.Canaries, ", ")
	}
	return strconv.FormatFloat(h.Percent, 'f', -1, 64) + "% of members"
}

// failingShown bounds the failing hosts a rollout page details.
const failingShown = 20

// RolloutURL is a rollout's page.
func RolloutURL(group, env, id string) string {
	return "/rollouts/" + url.PathEscape(group) + "/" + url.PathEscape(env) + "/" + url.PathEscape(id)
}

// BuildRollout joins a rollout's record with the group's members.
func BuildRollout(st *State, rec *manifest.RolloutRecord, now time.Time, lb *Labels) *RolloutView {
	s := rec.Strategy
	p := &RolloutView{Group: s.Group, Env: s.Env, ID: rec.ID, Record: rec, Package: lb.Of(s.Package), Previous: lb.Of(rec.Previous),
		StateClass: "r-" + string(rec.State), Commands: rollout.Commands(rec.State)}
	p.Strategy = strategyFacts(s)
	p.ShowEnv = s.Env != s.Package.App
	p.Created, p.Updated = At(rec.Created, now), At(rec.Updated, now)
	for i, h := range rec.History {
		v := rolloutStepView{Hosts: h.Hosts, Done: h.Done, Failed: h.Failed, Outcome: string(h.Outcome), Started: At(h.Started, now), Current: i == rec.Step && rec.State.Active()}
		if !h.Ended.IsZero() {
			v.Ended = At(h.Ended, now)
		}
		v.Label = stepLabel(rec, i)
		p.Steps = append(p.Steps, v)
	}
	var cur manifest.RolloutStep
	if len(rec.History) > 0 {
		cur = rec.History[rec.Step]
	}
	side := &manifest.Rollout{ID: rec.ID, Previous: rec.Previous, Percent: cur.Percent, Canaries: cur.Canaries}
	if rec.Staging {
		side.Percent, side.Canaries = 0, nil
	}
	if rec.State == manifest.RolloutSucceeded {
		side.Percent = 100
	}
	newCounts, oldCounts := map[manifest.State]int{}, map[manifest.State]int{}
	failing := map[string]failingHost{}
	for _, name := range st.Members(s.Group) {
		ss := st.Servers[name]
		p.Members++
		es, ok := ss.Status.Lookup(s.Env)
		state := es.State
		if !ok || state == "" {
			state = manifest.StateUnknown
		}
		onNew := (side.Takes(name) || rec.Previous.IsZero()) && rec.State != manifest.RolloutReverted
		if !onNew {
			oldCounts[state]++
			continue
		}
		p.OnNew++
		newCounts[state]++
		serving := ok && es.Serving == s.Package.String() && es.State == manifest.StateServing && (es.Healthy == nil || *es.Healthy)
		if serving {
			p.Serving++
			continue
		}
		stale := ss.Status.Stale(now)
		failed := ok && es.Desired == s.Package.String() && (es.State == manifest.StateFailed || es.State == manifest.StateRolledBack)
		unhealthy := ok && es.Healthy != nil && !*es.Healthy
		if !failed && !stale && !unhealthy && !slices.Contains(cur.Failed, name) {
			continue
		}
		f := failingHost{Name: name, State: string(state), Step: es.Step, DeployID: es.DeployID, ExitCode: es.ExitCode, Output: manifest.Head(es.Output), Updated: At(es.Updated, now), Why: es.Error}
		if len(rec.History) > 0 {
			f.RolloutStep = stepLabel(rec, rec.Step)
		}
		switch {
		case stale:
			f.Why = "no heartbeat since " + Ago(ss.Status.Time, now)
		case unhealthy && f.Why == "":
			f.Why = "health check failing: " + es.HealthError
		case f.Why == "":
			f.Why = "not serving the build healthy by healthy_deadline"
		}
		failing[name] = f
	}
	// Every host a step of the rollout failed, during it and after: what
	// it did with the build, from the outcomes it keeps, once it serves the
	// previous build again.
	for i, h := range rec.History {
		for _, name := range h.Failed {
			if _, ok := failing[name]; ok {
				continue
			}
			f := failingHost{Name: name, RolloutStep: stepLabel(rec, i), Why: "not serving the build healthy by healthy_deadline", State: string(manifest.StateUnknown)}
			if ss := st.Servers[name]; ss != nil && ss.Status != nil {
				es, _ := ss.Status.Lookup(s.Env)
				f.State = string(es.State)
				for _, o := range es.Recent {
					if o.Package == s.Package.String() && o.Failed() && !o.Time.Before(rec.Created.Add(-manifest.ClockSkew)) {
						f.State, f.Step, f.DeployID, f.ExitCode, f.Output, f.Updated, f.Why = string(o.State), o.Step, o.DeployID, o.ExitCode, o.Output, At(o.Time, now), o.Error
						break
					}
				}
			} else {
				f.Why = "no status: " + f.Why
			}
			failing[name] = f
		}
	}
	for _, name := range slices.Sorted(maps.Keys(failing)) {
		if len(p.Failing) == failingShown {
			p.FailingMore++
			continue
		}
		p.Failing = append(p.Failing, failing[name])
	}
	if p.Members > 0 {
		p.Bar = p.Serving * 100 / p.Members
	}
	p.New, p.Old = sortedCounts(newCounts), sortedCounts(oldCounts)
	return p
}

// sortedCounts lists counts by state name.
func sortedCounts(counts map[manifest.State]int) []stateCount {
	var out []stateCount
	for state, n := range counts {
		out = append(out, stateCount{State: state, Class: "s-" + strings.ToLower(string(state)), N: n})
	}
	slices.SortFunc(out, func(a, b stateCount) int { return strings.Compare(string(a.State), string(b.State)) })
	return out
}

// strategyFacts says a strategy in a few short items.
func strategyFacts(s manifest.RolloutStrategy) []string {
	steps := make([]string, len(s.Steps))
	for i, p := range s.Steps {
		steps[i] = strconv.FormatFloat(p, 'f', -1, 64) + "%"
	}
	facts := []string{
		fmt.Sprintf("canary %d", s.Canary),
		"steps " + strings.Join(steps, " → "),
		"min_healthy_time " + time.Duration(s.MinHealthyTime).String(),
		"healthy_deadline " + time.Duration(s.HealthyDeadline).String(),
		"progress_deadline " + time.Duration(s.ProgressDeadline).String(),
		"max_failures " + quotaText(s.MaxFailures),
	}
	if s.AutoRevert {
		facts = append(facts, "auto_revert")
	}
	if s.PauseAfterCanary {
		facts = append(facts, "pause_after_canary")
	}
	if s.StageFirst {
		facts = append(facts, "stage_first, min_staged "+quotaText(s.MinStaged))
	}
	return facts
}

func quotaText(q manifest.Quota) string {
	if q.IsPercent {
		return strconv.FormatFloat(q.Percent, 'f', -1, 64) + "%"
	}
	return strconv.Itoa(q.N)
}
