package fleetview

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pushpull/pushpull/manifest"
)

// Filter is the main page's filter, kept in the URL query: server and app
// name substrings, an exact group name and a state (one of filterStates).
// Empty fields match everything.
type Filter struct {
	Server, App, Group, State string
}

// filterStates are the states the main page filters servers by, with
// their labels: what needs attention (failed, rolled back or held envs, a
// manifest error, a stale host), what is in progress, drift, and silent
// (stale) hosts.
var filterStates = []struct{ Value, Label string }{
	{"attention", "needs attention"},
	{"progress", "in progress"},
	{"drift", "drift"},
	{"stale", "silent (stale)"},
}

func FilterFrom(q url.Values) Filter {
	f := Filter{
		Server: strings.ToLower(strings.TrimSpace(q.Get("server"))),
		App:    strings.ToLower(strings.TrimSpace(q.Get("app"))),
		Group:  strings.TrimSpace(q.Get("group")),
	}
	for _, s := range filterStates {
		if q.Get("state") == s.Value {
			f.State = s.Value
		}
	}
	return f
}

// Active reports whether the filter hides anything.
func (f Filter) Active() bool { return f.Server != "" || f.App != "" || f.Group != "" || f.State != "" }

// States lists the state filter's choices, for the form.
func (f Filter) States() []struct{ Value, Label string } { return filterStates }

// InState reports whether v is in the filter's state.
func (f Filter) InState(v ServerView) bool {
	switch f.State {
	case "attention":
		return v.Problems > 0 || v.Stale || v.ManifestErr != "" || v.HostErr != "" || v.StatusErr != ""
	case "progress":
		return v.Busy > 0
	case "drift":
		return v.Drifting > 0
	case "stale":
		return v.Stale
	}
	return true
}

// Label is a package as the pages show it: what a person needs to tell
// builds apart (build time and commit) with the full name at hand.
type Label struct {
	Name   string // full package name
	Commit string
	// Short is the build time in UTC ("" when unknown), shown on hover;
	// pages show it relative (BuiltISO, which their script keeps current).
	Short    string
	BuiltISO string
	Dirty    bool
	// Note is the release note, CommitURL the commit's page, and repo
	// and fullCommit what compareURL needs, when the package's metadata
	// is known (pushui reads the newest packages' at each refresh).
	Note, CommitURL  string
	Repo, FullCommit string
}

func labelOf(p manifest.PackageName) *Label {
	if p.IsZero() {
		return nil
	}
	return &Label{Name: p.String(), Commit: p.Commit, Short: UTC(p.Built), BuiltISO: p.Built.UTC().Format(time.RFC3339), Dirty: p.Dirty}
}

// Labels memoizes package labels while one page is built: a fleet runs a
// few packages on many servers. It is not safe for concurrent use; each
// rendering goroutine has its own.
type Labels struct {
	byName   map[manifest.PackageName]*Label
	byString map[string]*Label
	// meta returns a package's metadata if pushui holds it (no request);
	// nil labels without notes or links.
	meta func(manifest.PackageName) (manifest.PackageMeta, bool)
}

func NewLabels() *Labels {
	return &Labels{byName: map[manifest.PackageName]*Label{}, byString: map[string]*Label{}}
}

// Of labels p; nil for the zero name.
func (l *Labels) Of(p manifest.PackageName) *Label {
	if p.IsZero() {
		return nil
	}
	lb, ok := l.byName[p]
	if !ok {
		lb = labelOf(p)
		if l.meta != nil {
			if m, ok := l.meta(p); ok {
				lb.Note, lb.Repo, lb.FullCommit = m.Note, m.Repo, m.Commit
				lb.CommitURL = CommitURL(m.Repo, m.Commit)
			}
		}
		l.byName[p] = lb
	}
	return lb
}

// CompareURL links the changes from one package's commit to another's on
// the repository's site (GitHub, GitLab), "" when it cannot: unknown
// metadata, another repository, the same commit.
func CompareURL(from, to *Label) string {
	if from == nil || to == nil || from.Repo == "" || from.Repo != to.Repo || from.FullCommit == to.FullCommit {
		return ""
	}
	c := CommitURL(to.Repo, to.FullCommit)
	if c == "" || !isHexString(from.FullCommit) {
		return ""
	}
	switch base, _, _ := strings.Cut(c, "/commit/"); {
	case strings.HasPrefix(c, "https://github.com/"):
		return base + "/compare/" + from.FullCommit + "..." + to.FullCommit
	case strings.HasPrefix(c, "https://gitlab.com/"):
		return strings.TrimSuffix(base, "/-") + "/-/compare/" + from.FullCommit + "..." + to.FullCommit
	}
	return ""
}

// ofString labels a package name as pulld reports it; a name that does
// not parse is shown as it is.
func (l *Labels) ofString(s string) *Label {
	if s == "" {
		return nil
	}
	lb, ok := l.byString[s]
	if !ok {
		if p, err := manifest.ParsePackageName(s); err == nil {
			lb = l.Of(p)
		} else {
			lb = &Label{Name: s, Commit: s}
		}
		l.byString[s] = lb
	}
	return lb
}

// Row is one env (or one allowed app without an env) of a server.
// Everything the row template prints is computed here, so the template
// calls no functions: the main page renders thousands of rows.
type Row struct {
	Server, App, Env string
	ShowEnv          bool                 // the env is not named after the app
	Source           manifest.EntrySource // where the desired entry came from: "server", "group:NAME"
	Group            string               // the group of Source, "" for the server's own entry
	Overrides        string               // the groups whose entry the server's own overrides
	Held             string               // why pulld leaves the env as it is
	Allowed          bool                 // the config allows the app on the server
	InManifest       bool
	Reported         bool // pulld reports the env
	Desired, Serving *Label
	Same             bool   // serving what is desired
	CompareURL       string // the changes from the serving commit to the desired one
	State            manifest.State
	StateClass       string
	Step             manifest.Step // the step reached, when it says more than State
	Error            string        // with the app's package names relative to it
	Attempts         int           // failed attempts in a row
	NextAttempt      Moment        // when the host tries again
	Output           string        // the failing script's output, when shown inline
	HasOutput        bool          // there is output, loaded on demand
	Updated          Moment
	Drift            bool // serving something other than the manifest says, and not on the way there
	Failed           bool // failed, rolled back or held: needs attention
	// InProgress says the host is on its way to the desired state: acting
	// (DEPLOYING) or yet to read the newest revision. StateLabel names
	// what it does ("DEPLOYING", "ROLLING BACK", "RESTARTING",
	// "REMOVING"), ActionNote how ("rollback, no download").
	InProgress bool
	StateLabel string
	ActionNote string
	Action     manifest.Action // the status's action, for the API
	// Past is the host's last failed attempt at the env, kept after it
	// serves again (a rollback, a revert): what failed, where, when. Only
	// on pages about one server, and only while nothing newer happened.
	Past  *pastFailure
	Dirty bool // the desired build has uncommitted changes
	Old   bool // a newer package of the app exists
	Class string
}

// pastFailure is a failed attempt a host remembers (manifest.Outcome).
type pastFailure struct {
	Package  *Label
	Action   manifest.Action
	State    manifest.State
	Step     manifest.Step
	Error    string
	ExitCode int
	Output   string
	When     Moment
}

// failureOf returns o as a pastFailure.
func failureOf(o manifest.Outcome, now time.Time, lb *Labels) *pastFailure {
	return &pastFailure{Package: lb.ofString(o.Package), Action: o.Action, State: o.State, Step: o.Step, Error: o.Error, ExitCode: o.ExitCode, Output: o.Output, When: At(o.Time, now)}
}

// ServerView is one server's section: its manifest against its status.
type ServerView struct {
	Name         string
	InConfig     bool
	Groups       []string
	Allowed      []string
	Version      string
	Revision     int64
	ManifestErr  string // the manifest in the bucket could not be read
	HasStatus    bool
	StatusErr    string
	Heartbeat    Moment
	Stale        bool
	Host         string
	PulldVersion string
	HostRevision int64  // manifest revision pulld last acted on
	HostErr      string // pulld could not use the newest manifest
	Pending      bool   // pulld has not acted on the current revision yet
	Rows         []Row
	Problems     int // rows that need attention: failed, rolled back, held
	Busy         int // rows in progress
	Drifting     int // rows with drift nobody asked for
	Class        string
}

// Effective returns what s is to serve: its own manifest merged with the
// manifests of the groups its status names, by the rules pulld follows
// (manifest.Merge). A host that has not reported has no groups yet.
func Effective(s *Server, groups map[string]*Group) manifest.Desired {
	var own *manifest.Manifest
	if s.Version != "" {
		own = s.Manifest
	}
	sources := []manifest.Source{{Target: manifest.Server(s.Name), Manifest: own}}
	if s.Status != nil {
		for _, g := range s.Status.Groups {
			var m *manifest.Manifest
			if gs := groups[g.Name]; gs != nil && gs.Version != "" {
				m = gs.Manifest
			}
			sources = append(sources, manifest.Source{Target: manifest.Group(g.Name), Manifest: m})
		}
	}
	return manifest.Merge(sources)
}

// BuildServer joins a server's manifest, its groups' manifests, its status
// and the config into its view. apps gives each app's package listing (for
// "not the newest" marks); now decides staleness.
//
// Script output is copied into the rows only when inline is set (pages
// about one server); the main page links to it instead.
func BuildServer(s *Server, conf *manifest.PushConfig, groups map[string]*Group, apps map[string]*App, now time.Time, inline bool, lb *Labels) ServerView {
	v := serverHeader(s, conf, groups, now)
	b := &rowBuilder{v: &v, conf: conf, desired: Effective(s, groups), apps: apps, st: s.Status, now: now, inline: inline, lb: lb}
	b.seen = make(map[string]bool, len(v.Allowed)+len(b.desired.Entries))
	v.Rows = make([]Row, 0, len(v.Allowed)+len(b.desired.Entries))
	if s.Manifest != nil || len(b.desired.Entries) > 0 {
		b.desiredRows()
	}
	if s.Status != nil {
		b.reportedRows()
	}
	for i := range v.Rows {
		classify(&v.Rows[i], s.Name, v.Stale, v.Pending)
	}
	v.tally()
	return v
}

// serverHeader is what a ServerView says about the server as a whole:
// its manifest, its config and what its last status says of it.
func serverHeader(s *Server, conf *manifest.PushConfig, groups map[string]*Group, now time.Time) ServerView {
	v := ServerView{
		Name:        s.Name,
		Allowed:     conf.Servers[s.Name],
		Version:     string(s.Version),
		ManifestErr: s.ManifestErr,
		StatusErr:   s.StatusErr,
	}
	_, v.InConfig = conf.Servers[s.Name]
	if s.Manifest != nil {
		v.Revision = s.Manifest.Revision
	}
	st := s.Status
	if st == nil {
		return v
	}
	v.HasStatus = true
	v.Heartbeat = At(st.Time, now)
	v.Stale = st.Stale(now)
	v.Host = st.Host.Hostname
	v.PulldVersion = st.PulldVersion
	v.HostRevision = st.ManifestRevision
	v.HostErr = st.ManifestError
	v.Pending = s.Manifest != nil && st.ManifestRevision < s.Manifest.Revision
	v.Groups = st.GroupNames()
	for _, g := range st.Groups {
		if gs := groups[g.Name]; gs != nil && gs.Manifest != nil && g.Revision < gs.Manifest.Revision {
			v.Pending = true
		}
	}
	return v
}

// rowBuilder adds a server's rows to v: one per env its desired state
// names, then one per env its status reports that nothing names.
type rowBuilder struct {
	v       *ServerView
	conf    *manifest.PushConfig
	desired manifest.Desired
	apps    map[string]*App
	st      *manifest.Status // nil before the host reports
	now     time.Time
	inline  bool
	lb      *Labels
	seen    map[string]bool // envs with a row
}

// desiredRows adds the server's allowed apps first, in config order,
// then the other entries (its groups', and those the config does not
// allow).
func (b *rowBuilder) desiredRows() {
	for _, app := range b.v.Allowed {
		found := false
		for _, e := range b.desired.Entries {
			if e.Package.App == app && !b.seen[e.EnvName()] {
				b.entry(e)
				found = true
			}
		}
		if !found {
			b.v.Rows = append(b.v.Rows, Row{App: app, Env: app, Allowed: true, Source: manifest.SourceServer})
		}
	}
	for _, e := range b.desired.Entries {
		if !b.seen[e.EnvName()] {
			b.entry(e)
		}
	}
}

// entry adds the row of one desired entry, against what the host reports
// of its env.
func (b *rowBuilder) entry(e manifest.Entry) {
	env := e.EnvName()
	b.seen[env] = true
	var newest manifest.PackageName
	if a := b.apps[e.Package.App]; a != nil && len(a.Names) > 0 {
		newest = a.Names[0]
	}
	from := b.desired.From[env]
	r := Row{App: e.Package.App, Env: env, Allowed: b.conf.Allowed(from, e.Package.App), InManifest: true, Desired: b.lb.Of(e.Package), Source: from.Source()}
	if from.IsGroup() {
		r.Group = from.Name
	}
	r.Overrides = strings.Join(b.desired.Overrides[env], ", ")
	r.Dirty = e.Package.Dirty
	r.Old = !newest.IsZero() && e.Package.Compare(newest) < 0
	if b.st != nil {
		if es, ok := b.st.Lookup(env); ok {
			FillStatus(&r, es, b.now, b.inline, b.lb)
			r.Drift = es.Serving != r.Desired.Name
			r.Same = !r.Drift
			if r.Drift {
				r.CompareURL = CompareURL(r.Serving, r.Desired)
			}
		} else {
			r.Drift = true
		}
	}
	b.v.Rows = append(b.v.Rows, r)
}

// reportedRows adds the envs pulld reports that the manifest does not
// list: on the row of an allowed app that is not deployed, or on a row of
// their own. Still serving something there is drift (the host has yet to
// stop it).
func (b *rowBuilder) reportedRows() {
	for _, es := range b.st.Envs {
		if b.seen[es.Env] {
			continue
		}
		i := slices.IndexFunc(b.v.Rows, func(r Row) bool { return !r.InManifest && r.Env == es.Env })
		if i < 0 {
			b.v.Rows = append(b.v.Rows, Row{App: es.App, Env: es.Env, Allowed: slices.Contains(b.v.Allowed, es.App)})
			i = len(b.v.Rows) - 1
		}
		r := &b.v.Rows[i]
		FillStatus(r, es, b.now, b.inline, b.lb)
		r.Drift = es.Serving != "" && es.State != manifest.StateStopped
		if es.Held != "" {
			// Held by pulld (a conflict between groups, a missing
			// group manifest): not the allow-list's doing, and not
			// drift nobody asked for; Held says what it is.
			r.Allowed, r.Drift = true, false
		}
	}
}

// classify says what a row needs: serving something else than desired is
// progress while the host acts or has yet to read the newest revision,
// attention when its attempt failed, and drift nobody asked for
// otherwise. A stale host is not on its way anywhere: it needs attention.
func classify(r *Row, server string, stale, pending bool) {
	r.Server = server
	r.ShowEnv = r.Env != r.App
	r.InProgress = !stale && (r.State == manifest.StateDeploying || r.Drift && pending && !r.Failed)
	if r.InProgress {
		r.Failed = false // a retry under way
	}
	if r.InProgress || r.Failed {
		r.Drift = false
	}
	switch {
	case r.InProgress:
		r.Class = "progress"
	case r.Drift:
		r.Class = "drift"
	case r.Failed:
		r.Class = "failed"
	}
}

func FillStatus(r *Row, es manifest.EnvStatus, now time.Time, inline bool, lb *Labels) {
	r.Reported = true
	r.Serving = lb.ofString(es.Serving)
	r.State = es.State
	if r.State == "" {
		r.State = manifest.StateUnknown
	}
	r.StateClass = "s-" + strings.ToLower(string(r.State))
	if string(es.Step) != string(r.State) {
		r.Step = es.Step
	}
	// Within an app's row its packages need no "app/" in front.
	r.Error = strings.ReplaceAll(es.Error, es.App+"/"+es.App+"-", es.App+"-")
	r.Attempts = es.Attempts
	if !es.NextAttempt.IsZero() {
		r.NextAttempt = At(es.NextAttempt, now)
	}
	r.Held = es.Held
	if inline {
		r.Output = es.Output
		if len(es.Recent) > 0 && es.Recent[0].Failed() && es.Error == "" {
			r.Past = failureOf(es.Recent[0], now, lb)
		}
	} else {
		r.HasOutput = es.Output != ""
	}
	r.Updated = At(es.Updated, now)
	r.Failed = es.State == manifest.StateFailed || es.State == manifest.StateRolledBack || es.Error != "" || es.Held != ""
	r.StateLabel = string(r.State)
	if es.State == manifest.StateDeploying {
		r.Action = es.Action
		switch es.Action {
		case "rollback":
			r.StateLabel, r.ActionNote = "ROLLING BACK", "rollback, no download"
		case "restart":
			r.StateLabel = "RESTARTING"
		case "stop":
			r.StateLabel = "REMOVING"
		}
	}
}

// tally counts the rows that need attention and sets the section's class.
func (v *ServerView) tally() {
	v.Problems, v.Busy, v.Drifting = 0, 0, 0
	for _, r := range v.Rows {
		switch {
		case r.Failed:
			v.Problems++
		case r.InProgress:
			v.Busy++
		case r.Drift:
			v.Drifting++
		}
	}
	var cls []string
	if v.Stale {
		cls = append(cls, "stale")
	}
	if v.Problems > 0 || v.ManifestErr != "" || v.HostErr != "" {
		cls = append(cls, "trouble")
	}
	if v.Busy > 0 {
		cls = append(cls, "busy")
	}
	v.Class = strings.Join(cls, " ")
}

// KeepRows keeps the rows for which keep is true, and tallies again.
func (v *ServerView) KeepRows(keep func(Row) bool) {
	v.Rows = slices.DeleteFunc(v.Rows, func(r Row) bool { return !keep(r) })
	v.tally()
}

// Matching returns a keepRows predicate for rows whose app or env contains
// sub.
func Matching(sub string) func(Row) bool {
	return func(r Row) bool { return strings.Contains(r.App, sub) || strings.Contains(r.Env, sub) }
}

// Moment is a time as the pages show it: relative to the page's time,
// with the exact time in RFC 3339 for the script (which keeps it current
// and shows it on hover). ISO is "" for the zero time.
// Moment is a time as pages show it, in one format everywhere: relative
// ("5m ago", kept current by the page's script), with the absolute time
// in UTC on hover.
type Moment struct {
	T   time.Time
	ISO string
	Ago string
	UTC string // "2026-12-07 16:01:05 UTC"
}

func At(t, now time.Time) Moment {
	if t.IsZero() {
		return Moment{Ago: "never"}
	}
	return Moment{T: t, ISO: t.UTC().Format(time.RFC3339), Ago: Ago(t, now), UTC: UTC(t)}
}

// UTC is the absolute form of a time, shown on hover.
func UTC(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// Ago describes t relative to now, coarsely: "just now", "5m ago", "3h
// Ago", "2d ago", or the date when older than a month. Zero is "never".
func Ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < 10*time.Second:
		return "just now"
	case d < time.Minute:
		s = strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		s = strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		s = strconv.Itoa(int(d/time.Hour)) + "h"
	case d < 31*24*time.Hour:
		s = strconv.Itoa(int(d/(24*time.Hour))) + "d"
	default:
		return t.UTC().Format("2006-01-02")
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// CommitURL returns a web page for commit in repo when repo is a known
// forge's URL (https://, or git@host:path for GitHub, GitLab, Bitbucket
// and googlesource.com), and "" otherwise. The result is always an https
// URL whose path is built from the repo's owner/name path segments.
func CommitURL(repo, commit string) string {
	if commit == "" || !isHexString(commit) {
		return ""
	}
	var host, path string
	switch {
	case strings.HasPrefix(repo, "git@"):
		h, p, ok := strings.Cut(strings.TrimPrefix(repo, "git@"), ":")
		if !ok {
			return ""
		}
		host, path = h, p
	case strings.HasPrefix(repo, "https://"), strings.HasPrefix(repo, "http://"):
		u, err := url.Parse(repo)
		if err != nil || u.User != nil || u.Port() != "" || u.RawQuery != "" || u.Fragment != "" {
			return ""
		}
		host, path = u.Hostname(), u.Path
	default:
		return ""
	}
	path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
	parts := strings.Split(path, "/")
	if len(parts) < 1 || path == "" {
		return ""
	}
	for _, p := range parts {
		if !isRepoSegment(p) {
			return ""
		}
	}
	host = strings.ToLower(host)
	switch {
	case host == "github.com" && len(parts) == 2:
		return "https://github.com/" + path + "/commit/" + commit
	case host == "gitlab.com" && len(parts) >= 2:
		return "https://gitlab.com/" + path + "/-/commit/" + commit
	case host == "bitbucket.org" && len(parts) == 2:
		return "https://bitbucket.org/" + path + "/commits/" + commit
	case strings.HasSuffix(host, ".googlesource.com") && isRepoSegment(strings.TrimSuffix(host, ".googlesource.com")):
		return "https://" + host + "/" + path + "/+/" + commit
	}
	return ""
}

func isRepoSegment(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func isHexString(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// HumanSize formats a byte count for people.
func HumanSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}
