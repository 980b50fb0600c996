package web

import (
	"bytes"
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/internal/fleetview"
	"github.com/pushpull/pushpull/internal/pushui/auth"
	"github.com/pushpull/pushpull/internal/pushui/ops"
	"github.com/pushpull/pushpull/manifest"
)

// Mount adds the pages' routes to mux.
func (s *Handler) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", s.handleIndex)
	mux.HandleFunc("POST /refresh", s.handleRefresh)
	mux.HandleFunc("GET /servers/{server}", s.handleServer)
	mux.HandleFunc("GET /servers/{server}/apps/{app}", s.handleApp)
	mux.HandleFunc("POST /servers/{server}/apps/{app}/deploy", s.handleDeploy)
	mux.HandleFunc("POST /servers/{server}/apps/{app}/remove", s.handleRemove)
	mux.HandleFunc("GET /servers/{server}/envs/{env}/output", s.handleOutput)
	mux.HandleFunc("POST /servers/{server}/envs/{env}/restart", s.handleRestart)
	mux.HandleFunc("POST /servers/{server}/envs/{env}/config", s.handleConfig)
	mux.HandleFunc("POST /promote", s.handlePromote)
	mux.HandleFunc("GET /groups", s.handleGroups)
	mux.HandleFunc("GET /groups/{group}", s.handleGroup)
	mux.HandleFunc("POST /groups/{group}/apps/{app}/deploy", s.handleGroupDeploy)
	mux.HandleFunc("POST /groups/{group}/apps/{app}/remove", s.handleGroupRemove)
	mux.HandleFunc("POST /groups/{group}/envs/{env}/restart", s.handleGroupRestart)
	mux.HandleFunc("POST /groups/{group}/envs/{env}/config", s.handleGroupConfig)
	mux.HandleFunc("POST /groups/{group}/envs/{env}/promote", s.handlePromoteEnv)
	mux.HandleFunc("POST /groups/{group}/rollouts", s.handleStartRollout)
	mux.HandleFunc("GET /rollouts/{group}/{env}/{id}", s.handleRollout)
	mux.HandleFunc("POST /rollouts/{group}/{env}/{id}/{cmd}", s.handleRolloutCommand)
	mux.Handle("GET /static/", http.StripPrefix("/static/", s.staticHandler()))
	mux.HandleFunc("GET /config", s.handleConfigPage)
	mux.HandleFunc("POST /config", s.handleConfigSave)
}

// page is what every page shows around its content.
type page struct {
	Title    string
	User     string
	AuthOn   bool
	CanWrite bool
	Now      time.Time
	// Here is the request's path and query, where a refresh returns to.
	Here string
	// Live is the generation of what the page shows (liveGeneration):
	// the page's script asks /api/live for it and reloads what changed.
	// LiveRollout names the rollout (group/env/id) a rollout page follows.
	Live        string
	LiveRollout string
}

func (s *Handler) page(r *http.Request, title string) page {
	s.ReloadConfig(r.Context()) // one small request: the config is the bucket's, which anyone may change
	c := auth.CallerOf(r.Context())
	return page{
		Title:    title,
		User:     c.Name,
		AuthOn:   c.Auth,
		CanWrite: c.Admin,
		Now:      s.Now(),
		Here:     r.URL.RequestURI(),
		Live:     fleetview.Generation(s.View.Load(), ""),
	}
}

// apiPage is the API reference (GET /api).
type apiPage struct {
	page
	Routes any
	Base   string
}

// APIReference renders the API reference: routes is the API's route table
// (api.Handler.Routes), whose fields the page shows. The web package
// knows it only by its fields, so that the pages do not depend on the API.
func (s *Handler) APIReference(w http.ResponseWriter, r *http.Request, routes any) {
	s.render(w, r, http.StatusOK, "api", &apiPage{page: s.page(r, "API"), Routes: routes, Base: "http://" + r.Host})
}

type errorPage struct {
	page
	Code    int
	Message string
}

type indexPage struct {
	page
	Filter fleetview.Filter
	Groups []string
	// Summary is every group with its members counted by state: the
	// fleet at a glance, whatever its size.
	Summary []fleetview.GroupSummary
	// Sections holds the rendered server sections of this page (see
	// renderSections).
	Sections template.HTML
	Shown    int // sections on this page
	Matching int // servers matching the filter
	Total    int
	Pager    pager
	AsOf     fleetview.Moment
}

// serversPerPage bounds the servers one page of the main page shows, so
// that no page grows with the fleet.
const serversPerPage = 100

// pager is one page of a long list: which items it shows and the links to
// the pages beside it, which keep the rest of the query.
type pager struct {
	Page, Pages int
	From, To    int // 1-based, inclusive; To < From when empty
	Prev, Next  string
}

// paginate returns the bounds [lo, hi) of page ?page=N (1-based) of n
// items, per at a time, and its pager.
func paginate(r *http.Request, n, per int) (lo, hi int, p pager) {
	p.Pages = max(1, (n+per-1)/per)
	p.Page, _ = strconv.Atoi(r.URL.Query().Get("page"))
	p.Page = min(max(p.Page, 1), p.Pages)
	lo, hi = (p.Page-1)*per, min(p.Page*per, n)
	p.From, p.To = lo+1, hi
	link := func(page int) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(page))
		return r.URL.Path + "?" + q.Encode()
	}
	if p.Page > 1 {
		p.Prev = link(p.Page - 1)
	}
	if p.Page < p.Pages {
		p.Next = link(p.Page + 1)
	}
	return lo, hi, p
}

// handleIndex renders the main page from the cache: one section per server
// passing the filter.
func (s *Handler) handleIndex(w http.ResponseWriter, r *http.Request) {
	st := s.View.Load()
	f := fleetview.FilterFrom(r.URL.Query())
	p := &indexPage{page: s.page(r, "Servers"), Filter: f, Total: len(st.Order), AsOf: fleetview.At(st.AsOf, s.Now())}
	p.Groups = st.GroupNames(s.Conf())
	names := make([]string, 0, len(st.Order))
	for _, name := range st.Order {
		if f.Server != "" && !strings.Contains(name, f.Server) {
			continue
		}
		if f.Group != "" && !st.InGroup(name, f.Group) {
			continue
		}
		names = append(names, name)
	}
	p.Summary = fleetview.Summaries(s.View.Load(), s.Conf(), p.Now, s.View.Labels())
	var err error
	if f.App != "" || f.State != "" {
		// Which servers carry a matching app, or are in a state, is
		// known only once their rows are built: filter first, then page.
		names = s.matchingRows(st, names, f, p.Now)
	}
	p.Matching = len(names)
	lo, hi, pg := paginate(r, len(names), serversPerPage)
	p.Pager = pg
	p.Sections, p.Shown, err = s.renderSections(st, names[lo:hi], f.App, p.Now)
	if err != nil {
		s.Log.Error("render failed", "page", "index", "err", err)
		http.Error(w, "pushui: rendering the page failed; see the log", http.StatusInternalServerError)
		return
	}
	s.render(w, r, http.StatusOK, "index", p)
}

// matchingRows returns the servers of names that f's app and state keep:
// with a row whose app or env contains f.App, in f.State.
func (s *Handler) matchingRows(st *fleetview.State, names []string, f fleetview.Filter, now time.Time) []string {
	lb := s.View.Labels()
	out := names[:0:0]
	for _, name := range names {
		v := fleetview.BuildServer(st.Servers[name], s.Conf(), st.Groups, st.Apps, now, false, lb)
		if f.App != "" {
			v.KeepRows(fleetview.Matching(f.App))
			if len(v.Rows) == 0 {
				continue
			}
		}
		if f.InState(v) {
			out = append(out, name)
		}
	}
	return out
}

// sectionChunk is how many servers one rendering goroutine takes at a time.
const sectionChunk = 32

// renderSections builds and renders the sections of the named servers,
// keeping those with a row matching app (all when app is ""). It works in
// chunks on every CPU, since the main page of a large fleet is thousands of
// rows, and returns the sections in order with how many were kept. The
// result is html/template output, escaped like the rest of the page.
func (s *Handler) renderSections(st *fleetview.State, names []string, app string, now time.Time) (template.HTML, int, error) {
	type chunk struct {
		buf   *bytes.Buffer
		shown int
		err   error
	}
	chunks := make([]chunk, (len(names)+sectionChunk-1)/sectionChunk)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range min(runtime.GOMAXPROCS(0), len(chunks), len(s.sections)) {
		tmpl := s.sections[w]
		wg.Go(func() {
			lb := s.View.Labels()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(chunks) {
					return
				}
				c := &chunks[i]
				c.buf = s.bufs.Get().(*bytes.Buffer)
				c.buf.Reset()
				for _, name := range names[i*sectionChunk : min((i+1)*sectionChunk, len(names))] {
					v := fleetview.BuildServer(st.Servers[name], s.Conf(), st.Groups, st.Apps, now, false, lb)
					if app != "" {
						if v.KeepRows(fleetview.Matching(app)); len(v.Rows) == 0 {
							continue
						}
					}
					if c.err = tmpl.ExecuteTemplate(c.buf, "server", v); c.err != nil {
						return
					}
					c.shown++
				}
			}
		})
	}
	wg.Wait()
	size, shown := 0, 0
	for _, c := range chunks {
		if c.err != nil {
			return "", 0, c.err
		}
		if c.buf == nil { // left by a goroutine that failed on an earlier chunk
			return "", 0, errors.New("pushui: a section was not rendered")
		}
		size += c.buf.Len()
		shown += c.shown
	}
	var out strings.Builder
	out.Grow(size)
	for _, c := range chunks {
		out.Write(c.buf.Bytes())
		s.bufs.Put(c.buf)
	}
	return template.HTML(out.String()), shown, nil
}

// handleRefresh lists the bucket again and returns to the page it came
// from.
func (s *Handler) handleRefresh(w http.ResponseWriter, r *http.Request) {
	if err := s.View.Refresh(r.Context()); err != nil {
		s.Log.Error("refresh failed", "err", err)
		s.Fail(w, r, http.StatusBadGateway, err.Error())
		return
	}
	http.Redirect(w, r, localPath(r.FormValue("next")), http.StatusSeeOther)
}

// localPath returns next when it is a path on this site, "/" otherwise, so
// a crafted form cannot redirect elsewhere.
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/"
	}
	return next
}

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

// afterWrite redirects to where a successful form write lands, carrying
// the outcome in the query.
func afterWrite(w http.ResponseWriter, r *http.Request, target, done string, c *ops.Change, extra url.Values) {
	q := url.Values{}
	for k, v := range extra {
		q[k] = v
	}
	q.Set("done", done)
	if !c.Changed {
		q.Set("done", "same")
	}
	if c.NudgeErr != nil {
		q.Add("warn", "nudge")
	}
	if c.AuditErr != nil {
		q.Add("warn", "audit")
	}
	http.Redirect(w, r, target+"?"+q.Encode(), http.StatusSeeOther)
}

// formFail answers a failed form write on the app page: 412 with the new
// state on a conflict, 400 with the reason for bad input, 409 for a
// manifest that does not parse; other failures get the error page.
func (s *Handler) formFail(w http.ResponseWriter, r *http.Request, server, app string, err error) {
	var in *ops.InputError
	code := 0
	switch {
	case errors.Is(err, blobstore.ErrConflict):
		code = http.StatusPreconditionFailed
	case errors.As(err, &in):
		code = http.StatusBadRequest
	case errors.Is(err, ops.ErrBrokenManifest):
		code = http.StatusConflict
	}
	if code == 0 || manifest.CheckName("app", app) != nil || s.KnownServer(server) != nil {
		s.failErr(w, r, err)
		return
	}
	ctx := r.Context()
	p := s.appData(ctx, r, server, app)
	if code == http.StatusPreconditionFailed {
		p.Conflict = true
		if recs, err := s.Bucket.ListAudit(ctx, manifest.Server(server), 1); err == nil && len(recs) > 0 {
			p.LastEdit = &fleetview.HistoryEntry{Time: fleetview.At(recs[0].Time, p.Now), User: recs[0].User, Action: recs[0].Action}
		}
	} else {
		p.Error = err.Error()
	}
	s.render(w, r, code, "app", p)
}

// Fail answers an error page.
func (s *Handler) Fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	s.render(w, r, code, "error", &errorPage{page: s.page(r, http.StatusText(code)), Code: code, Message: msg})
}

// failErr answers err with the status its kind calls for.
func (s *Handler) failErr(w http.ResponseWriter, r *http.Request, err error) {
	s.failErrHook(w, r, err)
}

// handleDeploy points the app at the chosen package, if the manifest is
// still the one the page showed.
func (s *Handler) handleDeploy(w http.ResponseWriter, r *http.Request) {
	server, app := r.PathValue("server"), r.PathValue("app")
	if err := s.checkServerApp(server, app); err != nil {
		s.failErr(w, r, err)
		return
	}
	p, err := manifest.ParsePackageName(r.PostFormValue("package"))
	if err == nil && p.App != app {
		err = ops.BadInput("package %s is not a package of %s", p, app)
	} else if err != nil {
		err = ops.BadInput("%v", err)
	}
	if err == nil {
		err = s.CheckDeploy(r.Context(), manifest.Server(server), p)
	}
	if err != nil {
		s.formFail(w, r, server, app, err)
		return
	}
	c, err := s.Edit(r.Context(), fleet.Edit{Target: manifest.Server(server), User: auth.User(r.Context()), Action: "set " + app + " to " + p.String(),
		Apply: s.PinPackage(server, p), IfVersion: blobstore.Version(r.PostFormValue("version")), AbortRollout: r.PostFormValue("abort_rollout") == "on"})
	if err != nil {
		s.formFail(w, r, server, app, err)
		return
	}
	afterWrite(w, r, "/servers/"+server+"/apps/"+app, "deploy", c, url.Values{"what": {p.String()}})
}

// handleRemove removes every env of the app from the server; the form must
// carry confirm=yes.
func (s *Handler) handleRemove(w http.ResponseWriter, r *http.Request) {
	server, app := r.PathValue("server"), r.PathValue("app")
	if err := s.checkServerApp(server, app); err != nil {
		s.failErr(w, r, err)
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		s.formFail(w, r, server, app, ops.BadInput("tick the box to confirm removing %s from %s", app, server))
		return
	}
	c, err := s.EditIfVersion(r.Context(), auth.User(r.Context()), manifest.Server(server), blobstore.Version(r.PostFormValue("version")), "remove "+app, ops.RemoveApp(manifest.Server(server), app))
	if err != nil {
		s.formFail(w, r, server, app, err)
		return
	}
	afterWrite(w, r, "/servers/"+server, "remove", c, url.Values{"app": {app}})
}

// envApp returns the app of env on server, from the cached manifest, or
// the form's app field when the env is not known.
func (s *Handler) envApp(r *http.Request, server, env string) string {
	if ss := s.View.Load().Servers[server]; ss != nil && ss.Manifest != nil {
		if e, ok := ss.Manifest.Lookup(env); ok {
			return e.Package.App
		}
	}
	return r.PostFormValue("app")
}

// checkEnv checks the path of an env action and returns the env's app.
func (s *Handler) checkEnv(r *http.Request, server, env string) (string, error) {
	if err := s.KnownServer(server); err != nil {
		return "", err
	}
	if err := manifest.CheckName("env", env); err != nil {
		return "", ops.BadInput("%v", err)
	}
	app := s.envApp(r, server, env)
	if app == "" {
		return "", ops.BadInput("env %s is not on server %s", env, server)
	}
	if err := manifest.CheckName("app", app); err != nil {
		return "", ops.BadInput("%v", err)
	}
	return app, nil
}

// handleRestart gives the env a new restart token.
func (s *Handler) handleRestart(w http.ResponseWriter, r *http.Request) {
	server, env := r.PathValue("server"), r.PathValue("env")
	app, err := s.checkEnv(r, server, env)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	c, err := s.EditIfVersion(r.Context(), auth.User(r.Context()), manifest.Server(server), blobstore.Version(r.PostFormValue("version")), "restart "+env, ops.RestartEnv(manifest.Server(server), env, s.Now()))
	if err != nil {
		s.formFail(w, r, server, app, err)
		return
	}
	afterWrite(w, r, "/servers/"+server+"/apps/"+app, "restart", c, url.Values{"env": {env}})
}

// handleConfig replaces the env's config values with the form's.
func (s *Handler) handleConfig(w http.ResponseWriter, r *http.Request) {
	server, env := r.PathValue("server"), r.PathValue("env")
	app, err := s.checkEnv(r, server, env)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	cfg, err := parseConfigText(r.PostFormValue("config"))
	if err != nil {
		s.formFail(w, r, server, app, ops.BadInput("%v", err))
		return
	}
	c, err := s.EditIfVersion(r.Context(), auth.User(r.Context()), manifest.Server(server), blobstore.Version(r.PostFormValue("version")), "config "+env, ops.SetConfig(manifest.Server(server), env, cfg))
	if err != nil {
		s.formFail(w, r, server, app, err)
		return
	}
	afterWrite(w, r, "/servers/"+server+"/apps/"+app, "config", c, url.Values{"env": {env}})
}

// handlePromote sets one package in a group's manifest, from a server's
// app page: one write, which every member follows. It returns to the
// group's page, which follows the members to the build.
func (s *Handler) handlePromote(w http.ResponseWriter, r *http.Request) {
	p, err := manifest.ParsePackageName(r.PostFormValue("package"))
	if err != nil {
		s.failErr(w, r, ops.BadInput("%v", err))
		return
	}
	group := r.PostFormValue("group")
	c, err := s.DeployGroup(r.Context(), auth.User(r.Context()), group, p, r.PostFormValue("abort_rollout") == "on")
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	// The group's page says what was saved and follows the members to
	// the new build, live.
	extra := url.Values{"what": {p.String()}}
	if c.Changed {
		extra.Set("rev", strconv.FormatInt(c.After.Revision, 10))
	}
	afterWrite(w, r, "/groups/"+group, "deploy", c, extra)
}
