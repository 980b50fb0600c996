package pushui

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/internal/rollout"
	"github.com/pushpull/pushpull/manifest"
)

// rolloutPage is one rollout as its page shows it: the record, and the
// group's members as their statuses show them against it.
type rolloutView struct {
	Group, Env, ID string
	ShowEnv        bool // the env is not named after the app
	Record         *manifest.RolloutRecord
	Package        *pkgLabel
	Previous       *pkgLabel
	StateClass     string
	Created        moment
	Updated        moment
	Strategy       []string // the strategy, one "name value" per item
	Steps          []rolloutStepView
	// Members is the group's size; OnNew the members whose side of the
	// current step is the new build, Serving those serving it (healthy
	// when the entry has a health check). Bar is Serving as a percentage
	// of Members.
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

type rolloutPage struct {
	page
	*rolloutView
	Flash        []string
	FlashWarning string
}

// rolloutStepView is one row of the steps table.
type rolloutStepView struct {
	Label          string
	Hosts, Done    int
	Failed         []string
	Outcome        string
	Started, Ended moment
	Current        bool
}

// failingHost is a host that failed a step of the rollout, or a member of
// the new side that is not getting there: in which step of the rollout,
// at which of its own steps, with what exit code, why, and the first
// lines of the script's output.
type failingHost struct {
	Name, State, Why string
	RolloutStep      string
	Step, DeployID   string
	ExitCode         int
	Output           string
	Updated          moment
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

// rolloutURL is a rollout's page.
func rolloutURL(group, env, id string) string {
	return "/rollouts/" + url.PathEscape(group) + "/" + url.PathEscape(env) + "/" + url.PathEscape(id)
}

// buildRollout joins a rollout's record with the group's members.
func buildRollout(st *state, rec *manifest.RolloutRecord, now time.Time, lb *labels) *rolloutView {
	s := rec.Strategy
	p := &rolloutView{Group: s.Group, Env: s.Env, ID: rec.ID, Record: rec, Package: lb.of(s.Package), Previous: lb.of(rec.Previous),
		StateClass: "r-" + string(rec.State), Commands: rollout.Commands(rec.State)}
	p.Strategy = strategyFacts(s)
	p.ShowEnv = s.Env != s.Package.App
	p.Created, p.Updated = at(rec.Created, now), at(rec.Updated, now)
	for i, h := range rec.History {
		v := rolloutStepView{Hosts: h.Hosts, Done: h.Done, Failed: h.Failed, Outcome: string(h.Outcome), Started: at(h.Started, now), Current: i == rec.Step && rec.State.Active()}
		if !h.Ended.IsZero() {
			v.Ended = at(h.Ended, now)
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
	for _, name := range st.members(s.Group) {
		ss := st.servers[name]
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
		f := failingHost{Name: name, State: string(state), Step: es.Step, DeployID: es.DeployID, ExitCode: es.ExitCode, Output: manifest.Head(es.Output), Updated: at(es.Updated, now), Why: es.Error}
		if len(rec.History) > 0 {
			f.RolloutStep = stepLabel(rec, rec.Step)
		}
		switch {
		case stale:
			f.Why = "no heartbeat since " + ago(ss.Status.Time, now)
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
			if ss := st.servers[name]; ss != nil && ss.Status != nil {
				es, _ := ss.Status.Lookup(s.Env)
				f.State = string(es.State)
				for _, o := range es.Recent {
					if o.Package == s.Package.String() && o.Failed() && !o.Time.Before(rec.Created.Add(-manifest.ClockSkew)) {
						f.State, f.Step, f.DeployID, f.ExitCode, f.Output, f.Updated, f.Why = string(o.State), o.Step, o.DeployID, o.ExitCode, o.Output, at(o.Time, now), o.Error
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

// handleRollout renders one rollout: its state, its steps, the members by
// side and state, and the failing ones with their script's output. The
// page follows the rollout live (liveGeneration).
func (s *webUI) handleRollout(w http.ResponseWriter, r *http.Request) {
	group, env, id := r.PathValue("group"), r.PathValue("env"), r.PathValue("id")
	if err := s.knownGroup(group); err != nil {
		s.failErr(w, r, err)
		return
	}
	ctx := r.Context()
	rec, v, err := s.rollouts.Get(ctx, blobstore.RolloutRef{Group: group, Env: env, ID: id})
	switch {
	case errors.Is(err, blobstore.ErrNotFound):
		s.fail(w, r, http.StatusNotFound, "no rollout "+id+" of group "+group+" env "+env)
		return
	case errors.Is(err, manifest.ErrInvalidName):
		s.failErr(w, r, badInput("%v", err))
		return
	case err != nil:
		s.failErr(w, r, err)
		return
	}
	s.cache.refreshGroup(ctx, group)
	pg := s.page(r, "rollout "+id)
	pg.Live = liveGeneration(s.cache.load(), v)
	pg.LiveRollout = group + "/" + env + "/" + id
	p := &rolloutPage{page: pg, rolloutView: buildRollout(s.cache.load(), rec, pg.Now, s.cache.labels())}
	if cmd := r.URL.Query().Get("done"); cmd == "start" || validCommand(cmd) {
		p.Flash = append(p.Flash, rolloutFlash(cmd, rec))
	}
	s.render(w, r, http.StatusOK, "rollout", p)
}

func validCommand(s string) bool {
	_, err := rollout.ParseCommand(s)
	return err == nil
}

// rolloutFlash says what a command did, naming the build.
func rolloutFlash(cmd string, rec *manifest.RolloutRecord) string {
	what := rec.Strategy.Package.String()
	switch cmd {
	case "start":
		return "Rollout of " + what + " to group " + rec.Strategy.Group + " started."
	case "revert":
		return "Reverted: every member goes back to " + rec.Previous.String() + "."
	case "promote":
		return "Promoted: every member goes to " + what + " now."
	}
	return "Rollout of " + what + ": " + cmd + " done; it is " + string(rec.State) + "."
}

// handleRolloutCommand runs a button's command and returns to the page.
func (s *webUI) handleRolloutCommand(w http.ResponseWriter, r *http.Request) {
	group, env, id, cmd := r.PathValue("group"), r.PathValue("env"), r.PathValue("id"), r.PathValue("cmd")
	if err := s.knownGroup(group); err != nil {
		s.failErr(w, r, err)
		return
	}
	c, err := rollout.ParseCommand(cmd)
	if err == nil {
		_, err = s.rollouts.Command(r.Context(), blobstore.RolloutRef{Group: group, Env: env, ID: id}, c, userOf(r.Context()))
	}
	if err != nil {
		s.failErr(w, r, rolloutError(err))
		return
	}
	s.cache.refreshGroup(r.Context(), group)
	http.Redirect(w, r, rolloutURL(group, env, id)+"?done="+url.QueryEscape(cmd), http.StatusSeeOther)
}

// handleStartRollout starts a rollout from the group page's form: the
// package, and the strategy's main knobs (the rest have their defaults,
// or the group's default strategy from the push config when the form asks
// for it).
func (s *webUI) handleStartRollout(w http.ResponseWriter, r *http.Request) {
	group := r.PathValue("group")
	if err := s.knownGroup(group); err != nil {
		s.failErr(w, r, err)
		return
	}
	pkg, err := manifest.ParsePackageName(r.PostFormValue("package"))
	if err != nil {
		s.failErr(w, r, badInput("%v", err))
		return
	}
	st, err := strategyFromForm(r, s.conf().RolloutFor(group, pkg))
	if err != nil {
		s.failErr(w, r, badInput("%v", err))
		return
	}
	rec, err := s.rollouts.Start(r.Context(), st, userOf(r.Context()))
	if err != nil {
		s.failErr(w, r, rolloutError(err))
		return
	}
	s.cache.refreshGroup(r.Context(), group)
	http.Redirect(w, r, rolloutURL(group, rec.Strategy.Env, rec.ID)+"?done=start", http.StatusSeeOther)
}

// strategyFromForm reads the start form's knobs over def, the group's
// default strategy for the package.
func strategyFromForm(r *http.Request, def manifest.RolloutStrategy) (manifest.RolloutStrategy, error) {
	st := def
	var err error
	if v := r.PostFormValue("canary"); v != "" {
		if st.Canary, err = strconv.Atoi(v); err != nil {
			return st, fmt.Errorf("canary %q: want a number of hosts", v)
		}
	}
	if v := strings.TrimSpace(r.PostFormValue("steps")); v != "" {
		st.Steps = nil
		for f := range strings.FieldsFuncSeq(v, func(c rune) bool { return c == ',' || c == ' ' || c == '%' }) {
			n, err := strconv.ParseFloat(f, 64)
			if err != nil {
				return st, fmt.Errorf("steps %q: want percentages such as 10, 50, 100", v)
			}
			st.Steps = append(st.Steps, n)
		}
	}
	if v := r.PostFormValue("min_healthy_time"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return st, fmt.Errorf("min_healthy_time %q: want a duration such as 30s", v)
		}
		st.MinHealthyTime = manifest.Duration(d)
	}
	st.AutoRevert = st.AutoRevert || r.PostFormValue("auto_revert") == "on"
	st.PauseAfterCanary = st.PauseAfterCanary || r.PostFormValue("pause_after_canary") == "on"
	st.StageFirst = st.StageFirst || r.PostFormValue("stage_first") == "on"
	return st, nil
}

// rolloutError maps the rollout driver's errors to pushui's kinds, which
// failErr and apiFail answer: errState (409) for a command the rollout's
// state refuses or a second active rollout, errUnknown (404) for no such
// rollout, bad input (400) for a bad strategy or name or one the push
// config refuses.
func rolloutError(err error) error {
	switch {
	case errors.Is(err, rollout.ErrActive), errors.Is(err, rollout.ErrNotActive), errors.Is(err, rollout.ErrInvalid),
		errors.Is(err, fleet.ErrRolloutActive):
		return fmt.Errorf("%w: %w", errState, err)
	case errors.Is(err, blobstore.ErrNotFound):
		return fmt.Errorf("%w: %w", errUnknown, err)
	case errors.Is(err, rollout.ErrStrategy), errors.Is(err, manifest.ErrInvalidName),
		errors.Is(err, fleet.ErrNotAllowed), errors.Is(err, fleet.ErrNoPackage):
		return badInput("%v", err)
	}
	return err
}
