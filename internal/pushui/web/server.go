package web

import (
	"context"
	"net/http"
	"net/url"

	"github.com/pushpull/pushpull/internal/fleetview"
	"github.com/pushpull/pushpull/internal/pushui/auth"
	"github.com/pushpull/pushpull/internal/pushui/ops"
	"github.com/pushpull/pushpull/manifest"
)

// handleOutput answers the last output of env's failing script, as pulld
// reported it, read fresh: the main page loads it on demand.
func (s *Handler) handleOutput(w http.ResponseWriter, r *http.Request) {
	server, env := r.PathValue("server"), r.PathValue("env")
	if err := s.KnownServer(server); err != nil {
		s.failErr(w, r, err)
		return
	}
	if err := manifest.CheckName("env", env); err != nil {
		s.failErr(w, r, ops.BadInput("%v", err))
		return
	}
	ss := s.View.RefreshServer(r.Context(), server)
	if ss.Status == nil {
		s.Fail(w, r, http.StatusNotFound, server+" has not reported a status")
		return
	}
	es, ok := ss.Status.Lookup(env)
	if !ok {
		s.Fail(w, r, http.StatusNotFound, server+" reports no env "+env)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(es.Output))
}

type serverPage struct {
	page
	Server   fleetview.ServerView
	Manifest string // canonical JSON, for reading
	History  []fleetview.HistoryEntry
	HistErr  string
	Flash    []string
}

// handleServer renders one server, read fresh from the bucket, with its
// history.
func (s *Handler) handleServer(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("server")
	if err := s.KnownServer(name); err != nil {
		s.failErr(w, r, err)
		return
	}
	ss := s.View.RefreshServer(r.Context(), name)
	p := &serverPage{page: s.page(r, name), Flash: s.flashes(r.Context(), r.URL.Query(), name, "")}
	p.Server = fleetview.BuildServer(ss, s.Conf(), s.View.Load().Groups, s.View.Load().Apps, p.Now, true, s.View.Labels())
	ctx := r.Context()
	if ss.Manifest != nil {
		p.Manifest = string(auth.ForViewer(ctx, ss.Manifest).Marshal())
	}
	p.History, p.HistErr = s.View.History(ctx, manifest.Server(name), p.Now, auth.Viewer(ctx))
	s.render(w, r, http.StatusOK, "server", p)
}

// pkgRow is one package in the picker.
type pkgRow struct {
	Name                   string
	Built                  fleetview.Moment
	Commit, CommitURL      string
	Branch, User, Host     string
	Note                   string
	Dirty                  bool
	Deb                    bool // a Debian package, which pulld installs with dpkg
	Size                   int64
	Desired, Serving, Last bool // Last: the newest package
	MetaErr                string
}

// envForm is one env of the app on the server, with what its forms need.
type envForm struct {
	Env        string
	Package    string
	Policy     manifest.Policy
	Restart    string
	Config     map[string]string
	ConfigText string
	Editable   bool // the config survives the text area
}

type groupOption struct {
	Name    string
	Servers int // members, as their status reports
}

type appPage struct {
	page
	Server   fleetview.ServerView
	App      string
	Allowed  bool
	Version  string // the manifest Version every form carries back
	Envs     []envForm
	Packages []pkgRow
	ListErr  string
	Groups   []groupOption
	Flash    []string
	Error    string
	Conflict bool
	LastEdit *fleetview.HistoryEntry // on conflict: who changed the manifest last
}

// appData reads the server and the app's packages fresh and builds the
// picker page.
func (s *Handler) appData(ctx context.Context, r *http.Request, server, app string) *appPage {
	ss := s.View.RefreshServer(ctx, server)
	p := &appPage{page: s.page(r, app+" on "+server), App: app, Allowed: s.Conf().Allowed(manifest.Server(server), app), Version: string(ss.Version)}
	pkgs, err := s.View.Packages(ctx, app)
	if err != nil {
		p.ListErr = err.Error()
	}
	v := fleetview.BuildServer(ss, s.Conf(), s.View.Load().Groups, s.View.Load().Apps, p.Now, true, s.View.Labels())
	v.KeepRows(func(r fleetview.Row) bool { return r.App == app })
	p.Server = v

	desired := map[string]bool{}
	if m := auth.ForViewer(ctx, ss.Manifest); m != nil {
		for _, e := range m.Packages {
			if e.Package.App != app {
				continue
			}
			desired[e.Package.String()] = true
			p.Envs = append(p.Envs, envForm{
				Env: e.EnvName(), Package: e.Package.String(), Policy: e.Policy(), Restart: e.Restart,
				Config: e.Config, ConfigText: fleetview.FormatConfigText(e.Config), Editable: configEditable(e.Config),
			})
		}
	}
	serving := map[string]bool{}
	for _, row := range v.Rows {
		if row.Serving != nil {
			serving[row.Serving.Name] = true
		}
	}
	for i, pk := range pkgs {
		built := pk.Name.Built
		if pk.Err == nil && !pk.Meta.Built.IsZero() {
			built = pk.Meta.Built
		}
		row := pkgRow{Name: pk.Name.String(), Built: fleetview.At(built, p.Now), Commit: pk.Name.Commit, Dirty: pk.Name.Dirty, Deb: pk.Name.Format == manifest.FormatDeb, Size: pk.Size, Last: i == 0}
		if pk.Err != nil {
			row.MetaErr = pk.Err.Error()
		} else {
			m := pk.Meta
			row.Branch, row.User, row.Host, row.Note = m.Branch, m.User, m.Host, m.Note
			row.Dirty = row.Dirty || m.Dirty
			row.CommitURL = fleetview.CommitURL(m.Repo, m.Commit)
			if row.CommitURL == "" {
				row.CommitURL = fleetview.CommitURL(m.Repo, pk.Name.Commit)
			}
		}
		row.Desired = desired[row.Name]
		row.Serving = serving[row.Name]
		p.Packages = append(p.Packages, row)
	}
	st := s.View.Load()
	for _, g := range s.Conf().GroupNames() {
		if s.Conf().Allowed(manifest.Group(g), app) {
			p.Groups = append(p.Groups, groupOption{Name: g, Servers: len(st.Members(g))})
		}
	}
	return p
}

// handleApp renders the version picker and env settings of one app on one
// server.
func (s *Handler) handleApp(w http.ResponseWriter, r *http.Request) {
	server, app := r.PathValue("server"), r.PathValue("app")
	if err := s.checkServerApp(server, app); err != nil {
		s.failErr(w, r, err)
		return
	}
	p := s.appData(r.Context(), r, server, app)
	p.Flash = s.flashes(r.Context(), r.URL.Query(), server, app)
	s.render(w, r, http.StatusOK, "app", p)
}

func (s *Handler) checkServerApp(server, app string) error {
	if err := s.KnownServer(server); err != nil {
		return err
	}
	if err := manifest.CheckName("app", app); err != nil {
		return ops.BadInput("%v", err)
	}
	return nil
}

// flashes turns the query a write redirects with into messages.
func (s *Handler) flashes(ctx context.Context, q url.Values, server, app string) []string {
	var out []string
	env := q.Get("env")
	if manifest.CheckName("env", env) != nil {
		env = app
	}
	switch q.Get("done") {
	case "deploy":
		what := "the chosen version of " + app
		if p, err := manifest.ParsePackageName(q.Get("what")); err == nil && p.App == app {
			what = s.View.VersionText(ctx, p)
		}
		out = append(out, "Saved: "+server+" will deploy "+what+".")
	case "remove":
		removed := q.Get("app")
		if manifest.CheckName("app", removed) != nil {
			removed = "the app"
		}
		out = append(out, "Removed "+removed+" from "+server+": its host will stop it.")
	case "restart":
		out = append(out, "Saved: "+server+" will restart "+env+".")
	case "config":
		out = append(out, "Saved: "+server+" will restart "+env+" with the new config.")
	case "same":
		out = append(out, "Nothing to save: the manifest already says that.")
	default:
		return nil
	}
	for _, w := range q["warn"] {
		switch w {
		case "nudge":
			out = append(out, "The host could not be nudged (see pushui's log): it will act at its next poll.")
		case "audit":
			out = append(out, "The change is not in the history: writing the audit record failed (see pushui's log).")
		}
	}
	return out
}
