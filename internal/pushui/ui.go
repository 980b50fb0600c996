package pushui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
	"github.com/pushpull/pushpull/manifest"
)

// mount adds the pages' routes to mux.
func (s *webUI) mount(mux *http.ServeMux) {
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

func (s *webUI) page(r *http.Request, title string) page {
	s.reloadConfig(r.Context()) // one small request: the config is the bucket's, which anyone may change
	c := callerOf(r.Context())
	return page{
		Title:    title,
		User:     c.name,
		AuthOn:   c.auth,
		CanWrite: c.admin,
		Now:      s.now(),
		Here:     r.URL.RequestURI(),
		Live:     liveGeneration(s.cache.load(), ""),
	}
}

// apiPage is the API reference (GET /api).
type apiPage struct {
	page
	Routes []apiRoute
	Base   string
}

// handleAPIDoc renders the API reference of routes.
func (s *webUI) handleAPIDoc(w http.ResponseWriter, r *http.Request, routes []apiRoute) {
	s.render(w, r, http.StatusOK, "api", &apiPage{page: s.page(r, "API"), Routes: routes, Base: "http://" + r.Host})
}

type errorPage struct {
	page
	Code    int
	Message string
}

type indexPage struct {
	page
	Filter filter
	Groups []string
	// Summary is every group with its members counted by state: the
	// fleet at a glance, whatever its size.
	Summary []apiGroup
	// Sections holds the rendered server sections of this page (see
	// renderSections).
	Sections template.HTML
	Shown    int // sections on this page
	Matching int // servers matching the filter
	Total    int
	Pager    pager
	AsOf     moment
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
func (s *webUI) handleIndex(w http.ResponseWriter, r *http.Request) {
	st := s.cache.load()
	f := filterFrom(r.URL.Query())
	p := &indexPage{page: s.page(r, "Servers"), Filter: f, Total: len(st.order), AsOf: at(st.asOf, s.now())}
	p.Groups = st.groupNames(s.conf())
	names := make([]string, 0, len(st.order))
	for _, name := range st.order {
		if f.Server != "" && !strings.Contains(name, f.Server) {
			continue
		}
		if f.Group != "" && !st.inGroup(name, f.Group) {
			continue
		}
		names = append(names, name)
	}
	p.Summary = groupSummaries(s.cache.load(), s.conf(), p.Now, s.cache.labels())
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
		s.log.Error("render failed", "page", "index", "err", err)
		http.Error(w, "pushui: rendering the page failed; see the log", http.StatusInternalServerError)
		return
	}
	s.render(w, r, http.StatusOK, "index", p)
}

// matchingRows returns the servers of names that f's app and state keep:
// with a row whose app or env contains f.App, in f.State.
func (s *webUI) matchingRows(st *state, names []string, f filter, now time.Time) []string {
	lb := s.cache.labels()
	out := names[:0:0]
	for _, name := range names {
		v := buildServer(st.servers[name], s.conf(), st.groups, st.apps, now, false, lb)
		if f.App != "" {
			v.keepRows(matching(f.App))
			if len(v.Rows) == 0 {
				continue
			}
		}
		if f.inState(v) {
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
func (s *webUI) renderSections(st *state, names []string, app string, now time.Time) (template.HTML, int, error) {
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
			lb := s.cache.labels()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(chunks) {
					return
				}
				c := &chunks[i]
				c.buf = s.bufs.Get().(*bytes.Buffer)
				c.buf.Reset()
				for _, name := range names[i*sectionChunk : min((i+1)*sectionChunk, len(names))] {
					v := buildServer(st.servers[name], s.conf(), st.groups, st.apps, now, false, lb)
					if app != "" {
						if v.keepRows(matching(app)); len(v.Rows) == 0 {
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
func (s *webUI) handleRefresh(w http.ResponseWriter, r *http.Request) {
	if err := s.cache.refresh(r.Context()); err != nil {
		s.log.Error("refresh failed", "err", err)
		s.fail(w, r, http.StatusBadGateway, err.Error())
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
func (s *webUI) handleOutput(w http.ResponseWriter, r *http.Request) {
	server, env := r.PathValue("server"), r.PathValue("env")
	if err := s.knownServer(server); err != nil {
		s.failErr(w, r, err)
		return
	}
	if err := manifest.CheckName("env", env); err != nil {
		s.failErr(w, r, badInput("%v", err))
		return
	}
	ss := s.cache.refreshServer(r.Context(), server)
	if ss.Status == nil {
		s.fail(w, r, http.StatusNotFound, server+" has not reported a status")
		return
	}
	es, ok := ss.Status.Lookup(env)
	if !ok {
		s.fail(w, r, http.StatusNotFound, server+" reports no env "+env)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(es.Output))
}

type historyEntry struct {
	Time    moment
	User    string
	Action  string
	Changes []string
	// Outcome says what the hosts did with the build this change set,
	// while it is the one in force ("serving on 3 of 3", "rolled back on
	// web-2"), or, once a later change replaced it, what the hosts had
	// done with it by then, from the outcomes each keeps (pastOutcome).
	Outcome string
	// Back, when set, is the build this change set, which differs from
	// the one in force: the row's "roll back to this" deploys it again
	// (to BackURL, conditional on Version).
	Back             *pkgLabel
	BackURL, Version string
}

type serverPage struct {
	page
	Server   serverView
	Manifest string // canonical JSON, for reading
	History  []historyEntry
	HistErr  string
	Flash    []string
}

// historyLimit is how many audit records a server's or group's page shows.
const historyLimit = 50

// history returns the newest historyLimit changes of t's manifest, each
// manifest as see returns it (the viewer's view), or why they could not be
// listed.
func (c *cache) history(ctx context.Context, t manifest.Target, now time.Time, see func(*manifest.Manifest) *manifest.Manifest) ([]historyEntry, string) {
	recs, err := c.b.ListAudit(ctx, t, historyLimit)
	st := c.load()
	var cur *manifest.Manifest
	var version blobstore.Version
	var statuses []*manifest.Status
	if t.IsGroup() {
		if g := st.groups[t.Name]; g != nil {
			cur, version = g.Manifest, g.Version
		}
		for _, m := range st.members(t.Name) {
			statuses = append(statuses, st.servers[m].Status)
		}
	} else if ss := st.servers[t.Name]; ss != nil {
		cur, version = ss.Manifest, ss.Version
		if ss.Status != nil {
			statuses = append(statuses, ss.Status)
		}
	}
	lb := c.labels()
	replaced := map[string]time.Time{} // envs a newer record set, and when
	var out []historyEntry
	for _, rec := range recs { // newest first
		h := historyEntry{Time: at(rec.Time, now), User: rec.User, Action: rec.Action, Changes: describeChange(see(rec.Before), see(rec.After))}
		if e, ok := setEntry(rec.Before, rec.After); ok {
			env := e.EnvName()
			inForceEntry, inForce := manifest.Entry{}, false
			if cur != nil {
				inForceEntry, inForce = cur.Lookup(env)
			}
			switch until, ok := replaced[env]; {
			case ok:
				h.Outcome = pastOutcome(statuses, env, e.Package, rec.Time, until)
			case inForce && inForceEntry.Package == e.Package:
				h.Outcome = outcome(statuses, env, e.Package)
			}
			if !inForce || inForceEntry.Package != e.Package {
				h.Back, h.Version = lb.of(e.Package), string(version)
				h.BackURL = "/servers/" + t.Name + "/apps/" + e.Package.App + "/deploy"
				if t.IsGroup() {
					h.BackURL = "/groups/" + t.Name + "/apps/" + e.Package.App + "/deploy"
				}
			}
			replaced[env] = rec.Time
		}
		out = append(out, h)
	}
	if err != nil {
		return out, err.Error()
	}
	return out, ""
}

// setEntry returns the one entry whose package a change set, if it set
// exactly one.
func setEntry(before, after *manifest.Manifest) (manifest.Entry, bool) {
	if after == nil {
		return manifest.Entry{}, false
	}
	var set []manifest.Entry
	for _, e := range after.Packages {
		if before != nil {
			if b, ok := before.Lookup(e.EnvName()); ok && b.Package == e.Package {
				continue
			}
		}
		set = append(set, e)
	}
	if len(set) != 1 {
		return manifest.Entry{}, false
	}
	return set[0], true
}

// outcome says what the hosts whose statuses are given did with p in env.
func outcome(statuses []*manifest.Status, env string, p manifest.PackageName) string {
	var serving, deploying, total int
	var rolledBack, failed []string
	for _, st := range statuses {
		if st == nil {
			continue
		}
		total++
		es, ok := st.Lookup(env)
		switch {
		case !ok:
		case es.Serving == p.String() && es.State == manifest.StateServing:
			serving++
		case es.State == manifest.StateDeploying:
			deploying++
		case es.Desired == p.String() && es.State == manifest.StateRolledBack:
			rolledBack = append(rolledBack, st.Server+where(es.Step, es.ExitCode))
		case es.Desired == p.String() && es.State == manifest.StateFailed:
			failed = append(failed, st.Server+where(es.Step, es.ExitCode))
		}
	}
	if total == 0 {
		return "no host has reported yet"
	}
	parts := []string{fmt.Sprintf("serving on %d of %d", serving, total)}
	if deploying > 0 {
		parts = append(parts, fmt.Sprintf("%d deploying", deploying))
	}
	if len(rolledBack) > 0 {
		parts = append(parts, "rolled back on "+strings.Join(rolledBack, ", "))
	}
	if len(failed) > 0 {
		parts = append(parts, "failed on "+strings.Join(failed, ", "))
	}
	return strings.Join(parts, "; ")
}

// where says where a host's attempt failed: " (at POST_RESTART, exit 1)".
func where(step string, exit int) string {
	var parts []string
	if step != "" {
		parts = append(parts, "at "+step)
	}
	if exit != 0 {
		parts = append(parts, "exit "+strconv.Itoa(exit))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// pastOutcome says what the hosts whose statuses are given did with p in
// env after a change set it at from, until a later change at until
// replaced it, from the outcomes each host keeps (EnvStatus.Recent): the
// last outcome for p in that window counts. A host whose kept outcomes do
// not reach back to from has no record of it.
func pastOutcome(statuses []*manifest.Status, env string, p manifest.PackageName, from, until time.Time) string {
	var serving, unknown, total int
	var rolledBack, failed []string
	for _, st := range statuses {
		if st == nil {
			continue
		}
		total++
		es, _ := st.Lookup(env)
		var last *manifest.Outcome
		reaches := len(es.Recent) > 0 && len(es.Recent) < manifest.RecentOutcomes // it kept every outcome it had
		for i := range es.Recent {
			o := &es.Recent[i]
			// An outcome may be stamped up to manifest.ClockSkew before
			// the change's audit time: the two clocks are different
			// machines'.
			if o.Time.Before(from.Add(-manifest.ClockSkew)) {
				reaches = true
				break
			}
			if last == nil && o.Package == p.String() && o.Time.Before(until) {
				last = o
			}
		}
		switch {
		case last == nil && !reaches:
			unknown++
		case last == nil:
		case last.State == manifest.StateServing:
			serving++
		case last.State == manifest.StateRolledBack:
			rolledBack = append(rolledBack, st.Server+where(last.Step, last.ExitCode))
		case last.State == manifest.StateFailed:
			failed = append(failed, st.Server+where(last.Step, last.ExitCode))
		}
	}
	parts := []string{"replaced by a later change"}
	if total == 0 {
		return parts[0]
	}
	parts = append(parts, fmt.Sprintf("had served on %d of %d", serving, total))
	if len(rolledBack) > 0 {
		parts = append(parts, "rolled back on "+strings.Join(rolledBack, ", "))
	}
	if len(failed) > 0 {
		parts = append(parts, "failed on "+strings.Join(failed, ", "))
	}
	if unknown > 0 {
		parts = append(parts, fmt.Sprintf("no record on %d", unknown))
	}
	return strings.Join(parts, "; ")
}

// handleServer renders one server, read fresh from the bucket, with its
// history.
func (s *webUI) handleServer(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("server")
	if err := s.knownServer(name); err != nil {
		s.failErr(w, r, err)
		return
	}
	ss := s.cache.refreshServer(r.Context(), name)
	p := &serverPage{page: s.page(r, name), Flash: s.flashes(r.Context(), r.URL.Query(), name, "")}
	p.Server = buildServer(ss, s.conf(), s.cache.load().groups, s.cache.load().apps, p.Now, true, s.cache.labels())
	ctx := r.Context()
	if ss.Manifest != nil {
		p.Manifest = string(forViewer(ctx, ss.Manifest).Marshal())
	}
	p.History, p.HistErr = s.cache.history(ctx, manifest.Server(name), p.Now, viewer(ctx))
	s.render(w, r, http.StatusOK, "server", p)
}

// pkgRow is one package in the picker.
type pkgRow struct {
	Name                   string
	Built                  moment
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
	Server   serverView
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
	LastEdit *historyEntry // on conflict: who changed the manifest last
}

// appData reads the server and the app's packages fresh and builds the
// picker page.
func (s *webUI) appData(ctx context.Context, r *http.Request, server, app string) *appPage {
	ss := s.cache.refreshServer(ctx, server)
	p := &appPage{page: s.page(r, app+" on "+server), App: app, Allowed: s.conf().Allowed(manifest.Server(server), app), Version: string(ss.Version)}
	pkgs, err := s.cache.packages(ctx, app)
	if err != nil {
		p.ListErr = err.Error()
	}
	v := buildServer(ss, s.conf(), s.cache.load().groups, s.cache.load().apps, p.Now, true, s.cache.labels())
	v.keepRows(func(r rowView) bool { return r.App == app })
	p.Server = v

	desired := map[string]bool{}
	if m := forViewer(ctx, ss.Manifest); m != nil {
		for _, e := range m.Packages {
			if e.Package.App != app {
				continue
			}
			desired[e.Package.String()] = true
			p.Envs = append(p.Envs, envForm{
				Env: e.EnvName(), Package: e.Package.String(), Policy: e.Policy(), Restart: e.Restart,
				Config: e.Config, ConfigText: formatConfigText(e.Config), Editable: configEditable(e.Config),
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
		row := pkgRow{Name: pk.Name.String(), Built: at(built, p.Now), Commit: pk.Name.Commit, Dirty: pk.Name.Dirty, Deb: pk.Name.Format == manifest.FormatDeb, Size: pk.Size, Last: i == 0}
		if pk.Err != nil {
			row.MetaErr = pk.Err.Error()
		} else {
			m := pk.Meta
			row.Branch, row.User, row.Host, row.Note = m.Branch, m.User, m.Host, m.Note
			row.Dirty = row.Dirty || m.Dirty
			row.CommitURL = commitURL(m.Repo, m.Commit)
			if row.CommitURL == "" {
				row.CommitURL = commitURL(m.Repo, pk.Name.Commit)
			}
		}
		row.Desired = desired[row.Name]
		row.Serving = serving[row.Name]
		p.Packages = append(p.Packages, row)
	}
	st := s.cache.load()
	for _, g := range s.conf().GroupNames() {
		if s.conf().Allowed(manifest.Group(g), app) {
			p.Groups = append(p.Groups, groupOption{Name: g, Servers: len(st.members(g))})
		}
	}
	return p
}

// handleApp renders the version picker and env settings of one app on one
// server.
func (s *webUI) handleApp(w http.ResponseWriter, r *http.Request) {
	server, app := r.PathValue("server"), r.PathValue("app")
	if err := s.checkServerApp(server, app); err != nil {
		s.failErr(w, r, err)
		return
	}
	p := s.appData(r.Context(), r, server, app)
	p.Flash = s.flashes(r.Context(), r.URL.Query(), server, app)
	s.render(w, r, http.StatusOK, "app", p)
}

func (s *webUI) checkServerApp(server, app string) error {
	if err := s.knownServer(server); err != nil {
		return err
	}
	if err := manifest.CheckName("app", app); err != nil {
		return badInput("%v", err)
	}
	return nil
}

// flashes turns the query a write redirects with into messages.
func (s *webUI) flashes(ctx context.Context, q url.Values, server, app string) []string {
	var out []string
	env := q.Get("env")
	if manifest.CheckName("env", env) != nil {
		env = app
	}
	switch q.Get("done") {
	case "deploy":
		what := "the chosen version of " + app
		if p, err := manifest.ParsePackageName(q.Get("what")); err == nil && p.App == app {
			what = s.cache.versionText(ctx, p)
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
func afterWrite(w http.ResponseWriter, r *http.Request, target, done string, c *change, extra url.Values) {
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
func (s *webUI) formFail(w http.ResponseWriter, r *http.Request, server, app string, err error) {
	var in *inputError
	code := 0
	switch {
	case errors.Is(err, blobstore.ErrConflict):
		code = http.StatusPreconditionFailed
	case errors.As(err, &in):
		code = http.StatusBadRequest
	case errors.Is(err, errBrokenManifest):
		code = http.StatusConflict
	}
	if code == 0 || manifest.CheckName("app", app) != nil || s.knownServer(server) != nil {
		s.failErr(w, r, err)
		return
	}
	ctx := r.Context()
	p := s.appData(ctx, r, server, app)
	if code == http.StatusPreconditionFailed {
		p.Conflict = true
		if recs, err := s.b.ListAudit(ctx, manifest.Server(server), 1); err == nil && len(recs) > 0 {
			p.LastEdit = &historyEntry{Time: at(recs[0].Time, p.Now), User: recs[0].User, Action: recs[0].Action}
		}
	} else {
		p.Error = err.Error()
	}
	s.render(w, r, code, "app", p)
}

// fail answers an error page.
func (s *webUI) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	s.render(w, r, code, "error", &errorPage{page: s.page(r, http.StatusText(code)), Code: code, Message: msg})
}

// failErr answers err with the status its kind calls for.
func (s *webUI) failErr(w http.ResponseWriter, r *http.Request, err error) { s.failErrHook(w, r, err) }

// handleDeploy points the app at the chosen package, if the manifest is
// still the one the page showed.
func (s *webUI) handleDeploy(w http.ResponseWriter, r *http.Request) {
	server, app := r.PathValue("server"), r.PathValue("app")
	if err := s.checkServerApp(server, app); err != nil {
		s.failErr(w, r, err)
		return
	}
	p, err := manifest.ParsePackageName(r.PostFormValue("package"))
	if err == nil && p.App != app {
		err = badInput("package %s is not a package of %s", p, app)
	} else if err != nil {
		err = badInput("%v", err)
	}
	if err == nil {
		err = s.checkDeploy(r.Context(), manifest.Server(server), p)
	}
	if err != nil {
		s.formFail(w, r, server, app, err)
		return
	}
	c, err := s.edit(r.Context(), fleet.Edit{Target: manifest.Server(server), User: userOf(r.Context()), Action: "set " + app + " to " + p.String(),
		Apply: s.pinPackage(server, p), IfVersion: blobstore.Version(r.PostFormValue("version")), AbortRollout: r.PostFormValue("abort_rollout") == "on"})
	if err != nil {
		s.formFail(w, r, server, app, err)
		return
	}
	afterWrite(w, r, "/servers/"+server+"/apps/"+app, "deploy", c, url.Values{"what": {p.String()}})
}

// handleRemove removes every env of the app from the server; the form must
// carry confirm=yes.
func (s *webUI) handleRemove(w http.ResponseWriter, r *http.Request) {
	server, app := r.PathValue("server"), r.PathValue("app")
	if err := s.checkServerApp(server, app); err != nil {
		s.failErr(w, r, err)
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		s.formFail(w, r, server, app, badInput("tick the box to confirm removing %s from %s", app, server))
		return
	}
	c, err := s.editIfVersion(r.Context(), userOf(r.Context()), manifest.Server(server), blobstore.Version(r.PostFormValue("version")), "remove "+app, removeApp(manifest.Server(server), app))
	if err != nil {
		s.formFail(w, r, server, app, err)
		return
	}
	afterWrite(w, r, "/servers/"+server, "remove", c, url.Values{"app": {app}})
}

// envApp returns the app of env on server, from the cached manifest, or
// the form's app field when the env is not known.
func (s *webUI) envApp(r *http.Request, server, env string) string {
	if ss := s.cache.load().servers[server]; ss != nil && ss.Manifest != nil {
		if e, ok := ss.Manifest.Lookup(env); ok {
			return e.Package.App
		}
	}
	return r.PostFormValue("app")
}

// checkEnv checks the path of an env action and returns the env's app.
func (s *webUI) checkEnv(r *http.Request, server, env string) (string, error) {
	if err := s.knownServer(server); err != nil {
		return "", err
	}
	if err := manifest.CheckName("env", env); err != nil {
		return "", badInput("%v", err)
	}
	app := s.envApp(r, server, env)
	if app == "" {
		return "", badInput("env %s is not on server %s", env, server)
	}
	if err := manifest.CheckName("app", app); err != nil {
		return "", badInput("%v", err)
	}
	return app, nil
}

// handleRestart gives the env a new restart token.
func (s *webUI) handleRestart(w http.ResponseWriter, r *http.Request) {
	server, env := r.PathValue("server"), r.PathValue("env")
	app, err := s.checkEnv(r, server, env)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	c, err := s.editIfVersion(r.Context(), userOf(r.Context()), manifest.Server(server), blobstore.Version(r.PostFormValue("version")), "restart "+env, restartEnv(manifest.Server(server), env, s.now()))
	if err != nil {
		s.formFail(w, r, server, app, err)
		return
	}
	afterWrite(w, r, "/servers/"+server+"/apps/"+app, "restart", c, url.Values{"env": {env}})
}

// handleConfig replaces the env's config values with the form's.
func (s *webUI) handleConfig(w http.ResponseWriter, r *http.Request) {
	server, env := r.PathValue("server"), r.PathValue("env")
	app, err := s.checkEnv(r, server, env)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	cfg, err := parseConfigText(r.PostFormValue("config"))
	if err != nil {
		s.formFail(w, r, server, app, badInput("%v", err))
		return
	}
	c, err := s.editIfVersion(r.Context(), userOf(r.Context()), manifest.Server(server), blobstore.Version(r.PostFormValue("version")), "config "+env, setConfig(manifest.Server(server), env, cfg))
	if err != nil {
		s.formFail(w, r, server, app, err)
		return
	}
	afterWrite(w, r, "/servers/"+server+"/apps/"+app, "config", c, url.Values{"env": {env}})
}

// handlePromote sets one package in a group's manifest, from a server's
// app page: one write, which every member follows. It returns to the
// group's page, which follows the members to the build.
func (s *webUI) handlePromote(w http.ResponseWriter, r *http.Request) {
	p, err := manifest.ParsePackageName(r.PostFormValue("package"))
	if err != nil {
		s.failErr(w, r, badInput("%v", err))
		return
	}
	group := r.PostFormValue("group")
	c, err := s.deployGroup(r.Context(), userOf(r.Context()), group, p, r.PostFormValue("abort_rollout") == "on")
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

// versionText names a package as people know it: its app, commit and
// release note ("hello 2222222222bb “faster greetings”"), for flashes and
// prompts.
func (c *cache) versionText(ctx context.Context, p manifest.PackageName) string {
	t := p.App + " " + p.Commit
	if p.Dirty {
		t += " (dirty)"
	}
	if d := c.describe(ctx, []manifest.PackageName{p}); len(d) == 1 && d[0].Meta.Note != "" {
		t += " “" + d[0].Meta.Note + "”"
	}
	return t
}

// describeChange lists, per env, how after differs from before, for the
// history.
func describeChange(before, after *manifest.Manifest) []string {
	if before == nil {
		before = &manifest.Manifest{}
	}
	if after == nil {
		after = &manifest.Manifest{}
	}
	var out []string
	for _, e := range after.Packages {
		env := e.EnvName()
		b, ok := before.Lookup(env)
		if !ok {
			out = append(out, "+ "+env+": "+e.Package.ID())
			continue
		}
		if b.Package != e.Package {
			out = append(out, env+": "+b.Package.ID()+" → "+e.Package.ID())
		}
		if !mapsEqual(b.Config, e.Config) {
			out = append(out, env+": config "+formatConfigInline(b.Config)+" → "+formatConfigInline(e.Config))
		}
		if b.Restart != e.Restart {
			out = append(out, env+": restart requested")
		}
		if b.Policy() != e.Policy() {
			out = append(out, env+": on_failure "+string(b.Policy())+" → "+string(e.Policy()))
		}
	}
	for _, b := range before.Packages {
		if _, ok := after.Lookup(b.EnvName()); !ok {
			out = append(out, "− "+b.EnvName()+": "+b.Package.ID())
		}
	}
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func formatConfigInline(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	return "{" + strings.ReplaceAll(strings.TrimSuffix(formatConfigText(m), "\n"), "\n", ", ") + "}"
}
