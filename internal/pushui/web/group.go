package web

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
	"github.com/pushpull/pushpull/client"
	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/internal/fleetview"
	"github.com/pushpull/pushpull/internal/pushui/auth"
	"github.com/pushpull/pushpull/internal/pushui/ops"
	"github.com/pushpull/pushpull/manifest"
)

// rolloutRow is one rollout in a group's list.
type rolloutRow struct {
	ID, Env, URL string
	Package      *fleetview.Label
	State        manifest.RolloutState
	Class        string
	Step         string
	Reason       string
	Created      fleetview.Moment
}

// rolloutsShown bounds the rollouts a group page lists.
const rolloutsShown = 10

type groupPage struct {
	page
	*fleetview.GroupView
	Manifest    string
	Pager       pager
	Apps        []groupApp // what the deploy form offers
	History     []fleetview.HistoryEntry
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

// groupPackagesShown bounds the versions the deploy form offers per app.
const groupPackagesShown = 20

// handleGroup renders one group: its entries, its members (the hosts whose
// status names it) with their state per env, counts by state, the members
// whose own manifest overrides the group, and its history.
func (s *Handler) handleGroup(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("group")
	if err := s.KnownGroup(name); err != nil {
		s.failErr(w, r, err)
		return
	}
	ctx := r.Context()
	s.View.RefreshGroup(ctx, name)
	pg := s.page(r, "group "+name)
	p := &groupPage{page: pg, GroupView: fleetview.BuildGroup(s.View.Load(), s.Conf(), name, pg.Now, s.View.Labels())}
	lo, hi, pager := paginate(r, len(p.Members), serversPerPage)
	p.Members, p.Pager = p.Members[lo:hi], pager
	p.Flash = s.groupFlashes(ctx, r.URL.Query(), name, p.MemberCount)
	if g := s.View.Load().Groups[name]; g != nil && g.Manifest != nil {
		p.Manifest = string(auth.ForViewer(ctx, g.Manifest).Marshal())
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
			pkgs, err := s.View.Packages(ctx, app)
			if err != nil {
				continue
			}
			var current manifest.PackageName
			if g := s.View.Load().Groups[name]; g != nil && g.Manifest != nil {
				for _, e := range g.Manifest.Packages {
					if e.Package.App == app {
						current = e.Package
					}
				}
			}
			for _, pk := range pkgs[:min(len(pkgs), groupPackagesShown)] {
				ga.Packages = append(ga.Packages, pkgRow{Name: pk.Name.String(), Built: fleetview.At(pk.Name.Built, pg.Now), Commit: pk.Name.Commit, Dirty: pk.Name.Dirty, Note: pk.Meta.Note,
					Desired: pk.Name == current})
				ga.HasDesired = ga.HasDesired || pk.Name == current
			}
			if len(ga.Packages) > 0 {
				p.Apps = append(p.Apps, ga)
			}
		}
	}
	p.History, p.HistErr = s.View.History(ctx, manifest.Group(name), pg.Now, auth.Viewer(ctx))
	p.Rollouts, p.RolloutsErr = s.groupRollouts(ctx, name, pg.Now)
	p.ActiveRollout = slices.ContainsFunc(p.Rollouts, func(r rolloutRow) bool { return r.State.Active() })
	p.Strategy = s.Conf().RolloutFor(name, manifest.PackageName{})
	steps := make([]string, len(p.Strategy.Steps))
	for i, v := range p.Strategy.Steps {
		steps[i] = strconv.FormatFloat(v, 'f', -1, 64)
	}
	p.StrategySteps = strings.Join(steps, ", ")
	s.render(w, r, http.StatusOK, "group", p)
}

// groupRollouts lists group's newest rollouts, or why they cannot be.
func (s *Handler) groupRollouts(ctx context.Context, group string, now time.Time) ([]rolloutRow, string) {
	recs, _, err := s.Rollouts.List(ctx, group, "", rolloutsShown)
	if err != nil {
		return nil, err.Error()
	}
	lb := s.View.Labels()
	var out []rolloutRow
	for _, r := range recs {
		row := rolloutRow{ID: r.ID, Env: r.Strategy.Env, URL: fleetview.RolloutURL(group, r.Strategy.Env, r.ID), Package: lb.Of(r.Strategy.Package),
			State: r.State, Class: "r-" + string(r.State), Reason: r.Reason, Created: fleetview.At(r.Created, now)}
		if len(r.History) > 0 {
			row.Step = r.History[r.Step].Label()
		}
		out = append(out, row)
	}
	return out, ""
}

// groupFlashes turns the query a group write redirects with into messages.
func (s *Handler) groupFlashes(ctx context.Context, q url.Values, group string, members int) []string {
	what := q.Get("what")
	if strings.ContainsAny(what, "<>\n") || len(what) > 300 {
		what = ""
	}
	var out []string
	switch q.Get("done") {
	case "deploy":
		if p, err := manifest.ParsePackageName(what); err == nil {
			what = s.View.VersionText(ctx, p)
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
func (s *Handler) groupWrite(w http.ResponseWriter, r *http.Request, done, what string, write func(ctx context.Context, t manifest.Target, user string, v blobstore.Version) (*ops.Change, error)) {
	group := r.PathValue("group")
	if err := s.KnownGroup(group); err != nil {
		s.failErr(w, r, err)
		return
	}
	c, err := write(r.Context(), manifest.Group(group), auth.User(r.Context()), blobstore.Version(r.PostFormValue("version")))
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	afterWrite(w, r, "/groups/"+group, done, c, url.Values{"what": {what}})
}

// handleGroupDeploy sets the form's package in the group's manifest, if
// the manifest is still the one the page showed.
func (s *Handler) handleGroupDeploy(w http.ResponseWriter, r *http.Request) {
	p, err := manifest.ParsePackageName(r.PostFormValue("package"))
	if err != nil {
		s.failErr(w, r, ops.BadInput("%v", err))
		return
	}
	s.groupWrite(w, r, "deploy", p.String(), func(ctx context.Context, t manifest.Target, user string, v blobstore.Version) (*ops.Change, error) {
		if err := s.CheckDeploy(ctx, t, p); err != nil {
			return nil, err
		}
		return s.Edit(ctx, fleet.Edit{Target: t, User: user, Action: "set " + p.App + " to " + p.String(), Apply: ops.SetPackage(p), IfVersion: v,
			AbortRollout: r.PostFormValue("abort_rollout") == "on"})
	})
}

// handleGroupRemove removes every env of the app from the group; the form
// must carry confirm=yes.
func (s *Handler) handleGroupRemove(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	if err := manifest.CheckName("app", app); err != nil {
		s.failErr(w, r, ops.BadInput("%v", err))
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		s.failErr(w, r, ops.BadInput("tick the box to confirm removing %s from group %s", app, r.PathValue("group")))
		return
	}
	s.groupWrite(w, r, "remove", app, func(ctx context.Context, t manifest.Target, user string, v blobstore.Version) (*ops.Change, error) {
		return s.EditIfVersion(ctx, user, t, v, "remove "+app, ops.RemoveApp(t, app))
	})
}

// handleGroupRestart gives the env a new restart token on every member.
func (s *Handler) handleGroupRestart(w http.ResponseWriter, r *http.Request) {
	env := r.PathValue("env")
	if err := manifest.CheckName("env", env); err != nil {
		s.failErr(w, r, ops.BadInput("%v", err))
		return
	}
	s.groupWrite(w, r, "restart", env, func(ctx context.Context, t manifest.Target, user string, v blobstore.Version) (*ops.Change, error) {
		return s.EditIfVersion(ctx, user, t, v, "restart "+env, ops.RestartEnv(t, env, s.Now()))
	})
}

// handleGroupConfig replaces the env's config values in the group.
func (s *Handler) handleGroupConfig(w http.ResponseWriter, r *http.Request) {
	env := r.PathValue("env")
	if err := manifest.CheckName("env", env); err != nil {
		s.failErr(w, r, ops.BadInput("%v", err))
		return
	}
	cfg, err := parseConfigText(r.PostFormValue("config"))
	if err != nil {
		s.failErr(w, r, ops.BadInput("%v", err))
		return
	}
	s.groupWrite(w, r, "config", env, func(ctx context.Context, t manifest.Target, user string, v blobstore.Version) (*ops.Change, error) {
		return s.EditIfVersion(ctx, user, t, v, "config "+env, ops.SetConfig(t, env, cfg))
	})
}

// handlePromoteEnv copies the env's entry (package, config, policy) from
// this group to the group named by the form's "to", Teletraan's promote
// (staging → prod): one write of the other group's manifest, replacing its
// entry for the env, whatever else that manifest says.
func (s *Handler) handlePromoteEnv(w http.ResponseWriter, r *http.Request) {
	from, env, to := r.PathValue("group"), r.PathValue("env"), r.PostFormValue("to")
	if err := s.KnownGroup(from); err != nil {
		s.failErr(w, r, err)
		return
	}
	c, err := s.Promote(r.Context(), auth.User(r.Context()), from, env, to)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	afterWrite(w, r, "/groups/"+to, "promote", c, url.Values{"what": {env + " from " + from + " to " + to}})
}

type groupsPage struct {
	page
	Groups []client.GroupSummary
}

// handleGroups lists every group with its members counted by state.
func (s *Handler) handleGroups(w http.ResponseWriter, r *http.Request) {
	p := &groupsPage{page: s.page(r, "Groups")}
	p.Groups = fleetview.Summaries(s.View.Load(), s.Conf(), p.Now, s.View.Labels())
	s.render(w, r, http.StatusOK, "groups", p)
}

// plural is "s" unless n is 1.
func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
