package pushui

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/manifest"
)

// pathTarget returns the manifest a request's path names, {server} or
// {group}, after checking that pushui knows it.
func (s *apiHandler) pathTarget(r *http.Request) (manifest.Target, error) {
	if g := r.PathValue("group"); g != "" {
		return manifest.Group(g), s.knownGroup(g)
	}
	server := r.PathValue("server")
	return manifest.Server(server), s.knownServer(server)
}

// knownGroup reports an error wrapping errUnknown unless group is in
// the push config, has a manifest, or is named by a host's status.
func (s *service) knownGroup(group string) error {
	if err := manifest.CheckName("group", group); err != nil {
		return badInput("%v", err)
	}
	if s.conf().Lists(manifest.Group(group)) {
		return nil
	}
	if _, ok := s.cache.load().groups[group]; ok {
		return nil
	}
	return fmt.Errorf("group %s: %w (not in the push config, no manifest in the bucket, no host reports it)", group, errUnknown)
}

// deployGroup sets p in group's manifest: one write, whatever the group's
// size, re-applied when another writer gets in between. An active rollout
// of the app's env refuses it, unless abort asks to abort the rollout
// first.
func (s *service) deployGroup(ctx context.Context, user, group string, p manifest.PackageName, abort bool) (*change, error) {
	if err := s.knownGroup(group); err != nil {
		return nil, err
	}
	s.reloadConfig(ctx)
	t := manifest.Group(group)
	if err := s.checkDeploy(ctx, t, p); err != nil {
		return nil, err
	}
	return s.edit(ctx, fleet.Edit{Target: t, User: user, Action: "set " + p.App + " to " + p.String(), Apply: setPackage(p), Latest: true, AbortRollout: abort})
}

// stateCount is how many member envs are in one state.
type stateCount struct {
	State manifest.State
	Class string
	N     int
}

// memberEnv is one env of one member, as the group page shows it.
type memberEnv struct {
	Env        string
	Serving    *pkgLabel
	State      manifest.State
	StateClass string
	Same       bool   // serving the group's entry
	Override   bool   // the member's own manifest pins the env
	Held       string // pulld leaves the env as it is, and why
	Error      string
}

// memberView is one member of a group.
type memberView struct {
	Name      string
	Heartbeat moment
	Stale     bool
	Pending   bool // has not acted on the group's current revision yet
	Envs      []memberEnv
}

// groupEnv is one entry of the group's manifest.
type groupEnv struct {
	Env, App string
	ShowEnv  bool
	Package  *pkgLabel
	Policy   manifest.Policy
	Config   string
	Done     int // members serving it
	// Rollout is the entry's active rollout, if any: Previous serves the
	// members that have not taken Package yet.
	Rollout     *manifest.Rollout
	Previous    *pkgLabel
	RolloutURL  string
	RolloutStep string // "canaries", "10%"
}

// rolloutRow is one rollout in a group's list.
type rolloutRow struct {
	ID, Env, URL string
	Package      *pkgLabel
	State        manifest.RolloutState
	Class        string
	Step         string
	Reason       string
	Created      moment
}

// rolloutsShown bounds the rollouts a group page lists.
const rolloutsShown = 10

// groupView is a group as the console and the API show it: its manifest's
// entries joined with its members' statuses.
type groupView struct {
	Name        string
	InConfig    bool
	Allowed     []string
	Version     string
	Revision    int64
	Exists      bool
	ManifestErr string
	Entries     []groupEnv
	Members     []memberView
	MemberCount int
	Counts      []stateCount
	Overrides   int
	Held        int      // member envs pulld holds (a conflict between groups, a missing group manifest)
	Others      []string // groups an entry can be promoted to
}

type groupPage struct {
	page
	*groupView
	Manifest    string
	Pager       pager
	Apps        []groupApp // what the deploy form offers
	History     []historyEntry
	HistErr     string
	Flash       []string
	Rollouts    []rolloutRow // newest first
	RolloutsErr string
	// ActiveRollout says a rollout of the group is running or paused: the
	// deploy form offers to abort it first.
	ActiveRollout bool
	// Strategy is the group's default rollout strategy, which the start
	// form offers.
	Strategy      manifest.RolloutStrategy
	StrategySteps string
}

// groupApp is one app the deploy form offers, with its packages.
type groupApp struct {
	App      string
	Packages []pkgRow
	// HasDesired says one of Packages is the group's current build, which
	// the deploy form preselects; else it preselects nothing.
	HasDesired bool
}

// buildGroup joins a group's manifest with the statuses of its members.
func buildGroup(st *state, conf *manifest.PushConfig, name string, now time.Time, lb *labels) *groupView {
	p := &groupView{Name: name, InConfig: conf.Lists(manifest.Group(name)), Allowed: conf.Groups[name]}
	g := st.groups[name]
	var m *manifest.Manifest
	if g != nil {
		p.Version, p.ManifestErr, p.Exists = string(g.Version), g.ManifestErr, g.Version != ""
		m = g.Manifest
	}
	if m != nil {
		p.Revision = m.Revision
		for _, e := range m.Packages {
			ge := groupEnv{Env: e.EnvName(), App: e.Package.App, ShowEnv: e.EnvName() != e.Package.App,
				Package: lb.of(e.Package), Policy: e.Policy(), Config: formatConfigInline(e.Config)}
			if e.Rollout != nil {
				ge.Rollout, ge.Previous, ge.RolloutURL = e.Rollout, lb.of(e.Rollout.Previous), rolloutURL(name, e.EnvName(), e.Rollout.ID)
				ge.RolloutStep = manifest.RolloutStep{Percent: e.Rollout.Percent, Canaries: e.Rollout.Canaries}.Label()
			}
			p.Entries = append(p.Entries, ge)
		}
	}
	counts := map[manifest.State]int{}
	for _, member := range st.members(name) {
		ss := st.servers[member]
		mv := memberView{Name: member, Heartbeat: at(ss.Status.Time, now), Stale: ss.Status.Stale(now)}
		for _, gs := range ss.Status.Groups {
			if gs.Name == name && m != nil && gs.Revision < m.Revision {
				mv.Pending = true
			}
		}
		for i, ge := range p.Entries {
			me := memberEnv{Env: ge.Env, State: manifest.StateUnknown}
			if ss.Version != "" && ss.Manifest != nil {
				if _, ok := ss.Manifest.Lookup(ge.Env); ok {
					me.Override = true // the host's own entry wins (manifest.Merge)
					p.Overrides++
				}
			}
			if es, ok := ss.Status.Lookup(ge.Env); ok {
				me.Serving, me.State, me.Held, me.Error = lb.ofString(es.Serving), es.State, es.Held, es.Error
				if me.State == "" {
					me.State = manifest.StateUnknown
				}
				me.Same = es.Serving == ge.Package.Name && es.State == manifest.StateServing && es.Held == ""
				if es.Held != "" {
					p.Held++
				}
			}
			if me.Same {
				p.Entries[i].Done++
			}
			me.StateClass = "s-" + strings.ToLower(string(me.State))
			counts[me.State]++
			mv.Envs = append(mv.Envs, me)
		}
		p.Members = append(p.Members, mv)
	}
	p.MemberCount = len(p.Members)
	for _, state := range slices.Sorted(func(yield func(manifest.State) bool) {
		for k := range counts {
			if !yield(k) {
				return
			}
		}
	}) {
		p.Counts = append(p.Counts, stateCount{State: state, Class: "s-" + strings.ToLower(string(state)), N: counts[state]})
	}
	p.Others = slices.DeleteFunc(st.groupNames(conf), func(g string) bool { return g == name })
	return p
}

// groupPackagesShown bounds the versions the deploy form offers per app.
const groupPackagesShown = 20

// handleGroup renders one group: its entries, its members (the hosts whose
// status names it) with their state per env, counts by state, the members
// whose own manifest overrides the group, and its history.
func (s *webUI) handleGroup(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("group")
	if err := s.knownGroup(name); err != nil {
		s.failErr(w, r, err)
		return
	}
	ctx := r.Context()
	s.cache.refreshGroup(ctx, name)
	pg := s.page(r, "group "+name)
	p := &groupPage{page: pg, groupView: buildGroup(s.cache.load(), s.conf(), name, pg.Now, s.cache.labels())}
	lo, hi, pager := paginate(r, len(p.Members), serversPerPage)
	p.Members, p.Pager = p.Members[lo:hi], pager
	p.Flash = s.groupFlashes(ctx, r.URL.Query(), name, p.MemberCount)
	if g := s.cache.load().groups[name]; g != nil && g.Manifest != nil {
		p.Manifest = string(forViewer(ctx, g.Manifest).Marshal())
	}
	if pg.CanWrite {
		apps := slices.Clone(p.Allowed)
		for _, e := range p.Entries {
			if !slices.Contains(apps, e.App) {
				apps = append(apps, e.App)
			}
		}
		for _, app := range apps {
			ga := groupApp{App: app}
			pkgs, err := s.cache.packages(ctx, app)
			if err != nil {
				continue
			}
			var current manifest.PackageName
			if g := s.cache.load().groups[name]; g != nil && g.Manifest != nil {
				for _, e := range g.Manifest.Packages {
					if e.Package.App == app {
						current = e.Package
					}
				}
			}
			for _, pk := range pkgs[:min(len(pkgs), groupPackagesShown)] {
				ga.Packages = append(ga.Packages, pkgRow{Name: pk.Name.String(), Built: at(pk.Name.Built, pg.Now), Commit: pk.Name.Commit, Dirty: pk.Name.Dirty, Note: pk.Meta.Note,
					Desired: pk.Name == current})
				ga.HasDesired = ga.HasDesired || pk.Name == current
			}
			if len(ga.Packages) > 0 {
				p.Apps = append(p.Apps, ga)
			}
		}
	}
	p.History, p.HistErr = s.cache.history(ctx, manifest.Group(name), pg.Now, viewer(ctx))
	p.Rollouts, p.RolloutsErr = s.groupRollouts(ctx, name, pg.Now)
	p.ActiveRollout = slices.ContainsFunc(p.Rollouts, func(r rolloutRow) bool { return r.State.Active() })
	p.Strategy = s.conf().RolloutFor(name, manifest.PackageName{})
	steps := make([]string, len(p.Strategy.Steps))
	for i, v := range p.Strategy.Steps {
		steps[i] = strconv.FormatFloat(v, 'f', -1, 64)
	}
	p.StrategySteps = strings.Join(steps, ", ")
	s.render(w, r, http.StatusOK, "group", p)
}

// groupRollouts lists group's newest rollouts, or why they cannot be.
func (s *webUI) groupRollouts(ctx context.Context, group string, now time.Time) ([]rolloutRow, string) {
	recs, _, err := s.rollouts.List(ctx, group, "", rolloutsShown)
	if err != nil {
		return nil, err.Error()
	}
	lb := s.cache.labels()
	var out []rolloutRow
	for _, r := range recs {
		row := rolloutRow{ID: r.ID, Env: r.Strategy.Env, URL: rolloutURL(group, r.Strategy.Env, r.ID), Package: lb.of(r.Strategy.Package),
			State: r.State, Class: "r-" + string(r.State), Reason: r.Reason, Created: at(r.Created, now)}
		if len(r.History) > 0 {
			row.Step = r.History[r.Step].Label()
		}
		out = append(out, row)
	}
	return out, ""
}

// groupFlashes turns the query a group write redirects with into messages.
func (s *webUI) groupFlashes(ctx context.Context, q url.Values, group string, members int) []string {
	what := q.Get("what")
	if strings.ContainsAny(what, "<>\n") || len(what) > 300 {
		what = ""
	}
	var out []string
	switch q.Get("done") {
	case "deploy":
		if p, err := manifest.ParsePackageName(what); err == nil {
			what = s.cache.versionText(ctx, p)
		}
		saved := "Saved"
		if rev := q.Get("rev"); rev != "" && strings.Trim(rev, "0123456789") == "" {
			saved += " in groups/" + group + ".json, revision " + rev
		}
		out = append(out, fmt.Sprintf("%s: its %d member%s will deploy %s; follow them below.", saved, members, plural(members), what))
	case "remove":
		out = append(out, "Removed "+what+" from "+group+": its members will stop it.")
	case "restart":
		out = append(out, "Saved: every member of "+group+" will restart "+what+".")
	case "config":
		out = append(out, "Saved: every member of "+group+" will restart "+what+" with the new config.")
	case "promote":
		out = append(out, "Promoted "+what+".")
	case "same":
		out = append(out, "Nothing to save: the manifest already says that.")
	default:
		return nil
	}
	if slices.Contains(q["warn"], "nudge") {
		out = append(out, "The members could not be nudged (see pushui's log): they will act at their next poll.")
	}
	if slices.Contains(q["warn"], "audit") {
		out = append(out, "The change is not in the history: writing the audit record failed (see pushui's log).")
	}
	return out
}

// groupWrite runs one form write on a group's manifest and redirects back
// to the group's page with the outcome.
func (s *webUI) groupWrite(w http.ResponseWriter, r *http.Request, done, what string, write func(ctx context.Context, t manifest.Target, user string, v blobstore.Version) (*change, error)) {
	group := r.PathValue("group")
	if err := s.knownGroup(group); err != nil {
		s.failErr(w, r, err)
		return
	}
	c, err := write(r.Context(), manifest.Group(group), userOf(r.Context()), blobstore.Version(r.PostFormValue("version")))
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	afterWrite(w, r, "/groups/"+group, done, c, url.Values{"what": {what}})
}

// handleGroupDeploy sets the form's package in the group's manifest, if
// the manifest is still the one the page showed.
func (s *webUI) handleGroupDeploy(w http.ResponseWriter, r *http.Request) {
	p, err := manifest.ParsePackageName(r.PostFormValue("package"))
	if err != nil {
		s.failErr(w, r, badInput("%v", err))
		return
	}
	s.groupWrite(w, r, "deploy", p.String(), func(ctx context.Context, t manifest.Target, user string, v blobstore.Version) (*change, error) {
		if err := s.checkDeploy(ctx, t, p); err != nil {
			return nil, err
		}
		return s.edit(ctx, fleet.Edit{Target: t, User: user, Action: "set " + p.App + " to " + p.String(), Apply: setPackage(p), IfVersion: v,
			AbortRollout: r.PostFormValue("abort_rollout") == "on"})
	})
}

// handleGroupRemove removes every env of the app from the group; the form
// must carry confirm=yes.
func (s *webUI) handleGroupRemove(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	if err := manifest.CheckName("app", app); err != nil {
		s.failErr(w, r, badInput("%v", err))
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		s.failErr(w, r, badInput("tick the box to confirm removing %s from group %s", app, r.PathValue("group")))
		return
	}
	s.groupWrite(w, r, "remove", app, func(ctx context.Context, t manifest.Target, user string, v blobstore.Version) (*change, error) {
		return s.editIfVersion(ctx, user, t, v, "remove "+app, removeApp(t, app))
	})
}

// handleGroupRestart gives the env a new restart token on every member.
func (s *webUI) handleGroupRestart(w http.ResponseWriter, r *http.Request) {
	env := r.PathValue("env")
	if err := manifest.CheckName("env", env); err != nil {
		s.failErr(w, r, badInput("%v", err))
		return
	}
	s.groupWrite(w, r, "restart", env, func(ctx context.Context, t manifest.Target, user string, v blobstore.Version) (*change, error) {
		return s.editIfVersion(ctx, user, t, v, "restart "+env, restartEnv(t, env, s.now()))
	})
}

// handleGroupConfig replaces the env's config values in the group.
func (s *webUI) handleGroupConfig(w http.ResponseWriter, r *http.Request) {
	env := r.PathValue("env")
	if err := manifest.CheckName("env", env); err != nil {
		s.failErr(w, r, badInput("%v", err))
		return
	}
	cfg, err := parseConfigText(r.PostFormValue("config"))
	if err != nil {
		s.failErr(w, r, badInput("%v", err))
		return
	}
	s.groupWrite(w, r, "config", env, func(ctx context.Context, t manifest.Target, user string, v blobstore.Version) (*change, error) {
		return s.editIfVersion(ctx, user, t, v, "config "+env, setConfig(t, env, cfg))
	})
}

// handlePromoteEnv copies the env's entry (package, config, policy) from
// this group to the group named by the form's "to", Teletraan's promote
// (staging → prod): one write of the other group's manifest, replacing its
// entry for the env, whatever else that manifest says.
func (s *webUI) handlePromoteEnv(w http.ResponseWriter, r *http.Request) {
	from, env, to := r.PathValue("group"), r.PathValue("env"), r.PostFormValue("to")
	if err := s.knownGroup(from); err != nil {
		s.failErr(w, r, err)
		return
	}
	c, err := s.promote(r.Context(), userOf(r.Context()), from, env, to)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	afterWrite(w, r, "/groups/"+to, "promote", c, url.Values{"what": {env + " from " + from + " to " + to}})
}

// promote copies env's entry from group from to group to.
func (s *service) promote(ctx context.Context, user, from, env, to string) (*change, error) {
	if err := s.knownGroup(to); err != nil {
		return nil, err
	}
	if from == to {
		return nil, badInput("promote %s: from and to are both %s", env, from)
	}
	m, _, err := s.b.ReadManifest(ctx, manifest.Group(from))
	if err != nil {
		return nil, err
	}
	e, ok := m.Lookup(env)
	if !ok {
		return nil, badInput("env %s is not in the manifest of group %s", env, from)
	}
	s.reloadConfig(ctx)
	t := manifest.Group(to)
	if err := s.checkDeploy(ctx, t, e.Package); err != nil {
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

// apiGroup is one group in GET /api/groups.
type apiGroup struct {
	Name     string         `json:"name"`
	InConfig bool           `json:"in_config"`
	Allowed  []string       `json:"allowed"`
	Exists   bool           `json:"exists"` // has a manifest
	Revision int64          `json:"revision,omitempty"`
	Version  string         `json:"version,omitempty"`
	Error    string         `json:"manifest_error,omitempty"`
	Members  int            `json:"members"`
	Stale    int            `json:"stale"`     // members with no heartbeat for three poll periods
	Pending  int            `json:"pending"`   // members that have not acted on the current revision
	Override int            `json:"overrides"` // member envs pinned by the member's own manifest
	Held     int            `json:"held"`      // member envs pulld leaves as they are (see their status's held)
	States   map[string]int `json:"states"`    // member envs by state
	Done     int            `json:"done"`      // member envs serving the group's entry
	// Rollouts are the group's active rollouts, from its manifest.
	Rollouts []apiRolloutRef `json:"rollouts"`
}

// apiRolloutRef names an active rollout and where it stands.
type apiRolloutRef struct {
	Env  string `json:"env"`
	ID   string `json:"id"`
	Step string `json:"step"` // "staging", "canaries", "50%"
	URL  string `json:"url"`  // its page
}

type groupsPage struct {
	page
	Groups []apiGroup
}

// handleGroups lists every group with its members counted by state.
func (s *webUI) handleGroups(w http.ResponseWriter, r *http.Request) {
	p := &groupsPage{page: s.page(r, "Groups")}
	p.Groups = groupSummaries(s.cache.load(), s.conf(), p.Now, s.cache.labels())
	s.render(w, r, http.StatusOK, "groups", p)
}

// apiGroups answers GET /api/groups: every group pushui knows (configured,
// with a manifest, or reported by a host) with its members counted by
// state, from the cache.
func (s *apiHandler) apiGroups(w http.ResponseWriter, r *http.Request) {
	out := struct {
		AsOf   time.Time  `json:"as_of"`
		Groups []apiGroup `json:"groups"`
	}{AsOf: s.cache.load().asOf, Groups: groupSummaries(s.cache.load(), s.conf(), s.now(), s.cache.labels())}
	writeJSON(w, http.StatusOK, out)
}

// groupSummaries summarizes every group of st and conf.
func groupSummaries(st *state, conf *manifest.PushConfig, now time.Time, lb *labels) []apiGroup {
	out := []apiGroup{}
	for _, name := range st.groupNames(conf) {
		p := buildGroup(st, conf, name, now, lb)
		a := apiGroup{Name: name, InConfig: p.InConfig, Allowed: append([]string{}, p.Allowed...), Exists: p.Exists, Revision: p.Revision,
			Version: strings.Trim(p.Version, `"`), Error: p.ManifestErr, Members: p.MemberCount, Override: p.Overrides, Held: p.Held, States: map[string]int{}}
		for _, c := range p.Counts {
			a.States[string(c.State)] = c.N
		}
		for _, m := range p.Members {
			if m.Stale {
				a.Stale++
			}
			if m.Pending {
				a.Pending++
			}
		}
		a.Rollouts = []apiRolloutRef{}
		for _, e := range p.Entries {
			a.Done += e.Done
			if e.Rollout != nil {
				a.Rollouts = append(a.Rollouts, apiRolloutRef{Env: e.Env, ID: e.Rollout.ID, Step: e.RolloutStep, URL: e.RolloutURL})
			}
		}
		out = append(out, a)
	}
	return out
}

// plural is "s" unless n is 1.
func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
