package pushui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/fleetview"
	"github.com/pushpull/pushpull/internal/pushui/auth"
	"github.com/pushpull/pushpull/manifest"
	"golang.org/x/net/html"
)

func getPage(t *testing.T, h http.Handler, target string) *html.Node {
	t.Helper()
	w := do(t, h, http.MethodGet, target, nil)
	wantCode(t, w, http.StatusOK)
	if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("%s: Content-Type %q", target, ct)
	}
	return parseHTML(t, w.Body.Bytes())
}

func texts(t *testing.T, root *html.Node, sel string) []string {
	t.Helper()
	var out []string
	for _, n := range queryAll(t, root, sel) {
		out = append(out, text(n))
	}
	return out
}

func attrs(t *testing.T, root *html.Node, sel, key string) []string {
	t.Helper()
	var out []string
	for _, n := range queryAll(t, root, sel) {
		out = append(out, attr(n, key))
	}
	return out
}

func hasClass(n *html.Node, class string) bool {
	return slices.Contains(strings.Fields(attr(n, "class")), class)
}

// TestMainPage checks what the main page says about each server: desired
// against actual, and every highlight.
func TestMainPage(t *testing.T) {
	f := newFixture(t)
	doc := getPage(t, f.server(), "/")

	if got := attrs(t, doc, "section.server", "data-server"); strings.Join(got, ",") != "db-1,old-1,web-1,web-2" {
		t.Fatalf("sections %v, want one per server from config and bucket, sorted", got)
	}
	row := func(server, app string) *html.Node {
		return query(t, doc, `section[data-server=`+server+`] tr[data-app=`+app+`]`)
	}
	tests := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"serving what is desired", func(t *testing.T) {
			r := row("web-1", "hello")
			if hasClass(r, "drift") || hasClass(r, "failed") {
				t.Errorf("class %q", attr(r, "class"))
			}
			if got := text(query(t, r, ".state")); got != "SERVING_BUILD" {
				t.Errorf("state %q", got)
			}
			if n := len(queryAll(t, r, ".step")); n != 0 {
				t.Error("the step is shown although it repeats the state")
			}
		}},
		{"desired package shown by commit, full name on hover", func(t *testing.T) {
			pk := query(t, row("web-1", "hello"), "span.pkg")
			if attr(pk, "title") != f.h2.String() || text(query(t, pk, "code")) != f.h2.Commit {
				t.Errorf("desired: title %q text %q", attr(pk, "title"), text(pk))
			}
			if text(query(t, row("web-1", "hello"), "span.same")) != "= desired" {
				t.Error("serving column does not say it matches")
			}
		}},
		{"failure with error and output on demand", func(t *testing.T) {
			r := row("web-1", "api")
			if !hasClass(r, "failed") || hasClass(r, "drift") {
				t.Errorf("class %q, want failed (it needs attention), not drift", attr(r, "class"))
			}
			fr := query(t, doc, `section[data-server="web-1"] tr[data-failure-app="api"]`) // the full-width row below
			if got := text(query(t, fr, "details.err summary")); !strings.HasPrefix(got, "POST_RESTART exited with status 1") || !strings.Contains(got, "at POST_RESTART") {
				t.Errorf("error summary %q", got)
			}
			if got := attr(query(t, fr, "details.err a.output"), "href"); got != "/servers/web-1/envs/api/output" {
				t.Errorf("output link %q", got)
			}
			if got := text(query(t, r, ".state")); got != "FAILED" {
				t.Errorf("state %q", got)
			}
			if got := text(query(t, r, ".step")); got != "POST_RESTART" {
				t.Errorf("step %q", got)
			}
		}},
		{"drift: serving another build on a stale host", func(t *testing.T) {
			r := row("web-2", "hello") // DEPLOYING, but its heartbeat is two hours old: not in progress
			if !hasClass(r, "drift") || hasClass(r, "failed") || hasClass(r, "progress") {
				t.Errorf("class %q, want drift only", attr(r, "class"))
			}
			pks := attrs(t, r, "span.pkg", "title")
			if len(pks) != 2 || pks[0] != f.h3.String() || pks[1] != f.h2.String() {
				t.Errorf("desired/serving %v, want %s then %s", pks, f.h3, f.h2)
			}
		}},
		{"stale host", func(t *testing.T) {
			sec := query(t, doc, "section[data-server=web-2]")
			if !hasClass(sec, "stale") || len(queryAll(t, sec, "header .badge.stale")) != 1 {
				t.Error("web-2 (no heartbeat for 2h, polling every 5m) is not marked stale")
			}
			if hasClass(query(t, doc, "section[data-server=web-1]"), "stale") {
				t.Error("web-1 (heartbeat a minute ago) is marked stale")
			}
			if got := text(query(t, sec, "header .facts time")); got != "2h ago" {
				t.Errorf("heartbeat %q", got)
			}
		}},
		{"dirty build", func(t *testing.T) {
			if len(queryAll(t, row("web-2", "api"), ".badge.dirty")) != 1 {
				t.Error("web-2's api (dirty a2) has no dirty badge")
			}
			if len(queryAll(t, row("web-1", "api"), ".badge.dirty")) != 0 {
				t.Error("web-1's api (clean a1) has a dirty badge")
			}
		}},
		{"not the newest build", func(t *testing.T) {
			for _, c := range []struct {
				server, app string
				old         bool
			}{{"web-1", "hello", true}, {"web-2", "hello", false}, {"web-1", "api", true}, {"web-2", "api", false}, {"old-1", "hello", true}} {
				if got := len(queryAll(t, row(c.server, c.app), ".badge.old")) == 1; got != c.old {
					t.Errorf("%s/%s: newer-available badge %v, want %v", c.server, c.app, got, c.old)
				}
			}
		}},
		{"allowed app not deployed", func(t *testing.T) {
			r := row("db-1", "hello")
			if got := text(r); !strings.Contains(got, "not deployed") {
				t.Errorf("db-1 hello row: %q", got)
			}
			if len(queryAll(t, query(t, doc, "section[data-server=db-1]"), ".badge.muted")) != 1 {
				t.Error("db-1 has no 'no report yet' badge")
			}
		}},
		{"server not in config", func(t *testing.T) {
			sec := query(t, doc, "section[data-server=old-1]")
			if got := texts(t, sec, "header .badge.warn"); len(got) != 1 || got[0] != "not in config" {
				t.Errorf("old-1 badges %v", got)
			}
			if got := texts(t, sec, "tr[data-app=hello] .badge.warn"); len(got) != 1 || got[0] != "not allowed" {
				t.Errorf("old-1 hello badges %v", got)
			}
		}},
		{"groups and attention count", func(t *testing.T) {
			if got := texts(t, query(t, doc, "section[data-server=web-1]"), "header .tag"); strings.Join(got, ",") != "web" {
				t.Errorf("web-1 groups %v", got)
			}
			if got := text(query(t, doc, "section[data-server=web-1] header .badge.bad")); got != "1 needs attention" {
				t.Errorf("web-1 attention badge %q", got)
			}
			if sec := query(t, doc, "section[data-server=db-1]"); hasClass(sec, "trouble") {
				t.Error("db-1 is marked as in trouble")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}
}

// TestMainPageFilter checks that the filter in the URL selects servers and
// rows, and is echoed in the form so it stays in the URL.
func TestMainPageFilter(t *testing.T) {
	f := newFixture(t)
	s := f.server()
	tests := []struct {
		query   string
		servers string            // sections, in order
		rows    map[string]string // server → apps of its rows
	}{
		{"", "db-1,old-1,web-1,web-2", map[string]string{"web-1": "hello,api"}},
		{"?server=web", "web-1,web-2", map[string]string{"web-2": "hello,api"}},
		{"?server=WEB-2", "web-2", nil},
		{"?app=api", "web-1,web-2", map[string]string{"web-1": "api", "web-2": "api"}},
		{"?app=hello&server=web-1", "web-1", map[string]string{"web-1": "hello"}},
		{"?app=hel&server=1", "db-1,old-1,web-1", map[string]string{"web-1": "hello"}},
		{"?group=web", "web-1,web-2", nil},
		{"?group=web&app=hello&server=2", "web-2", map[string]string{"web-2": "hello"}},
		{"?server=nothing-like-this", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			doc := getPage(t, s, "/"+tt.query)
			if got := strings.Join(attrs(t, doc, "section.server", "data-server"), ","); got != tt.servers {
				t.Errorf("servers %q, want %q", got, tt.servers)
			}
			for server, apps := range tt.rows {
				if got := strings.Join(attrs(t, doc, "section[data-server="+server+"] tbody tr[data-app]", "data-app"), ","); got != apps {
					t.Errorf("%s rows %q, want %q", server, got, apps)
				}
			}
			q, _ := url.ParseQuery(strings.TrimPrefix(tt.query, "?"))
			if got := attr(query(t, doc, "#filter input[name=server]"), "value"); got != strings.ToLower(q.Get("server")) {
				t.Errorf("server field %q, want %q", got, q.Get("server"))
			}
			if got := attr(query(t, doc, "#filter input[name=app]"), "value"); got != q.Get("app") {
				t.Errorf("app field %q, want %q", got, q.Get("app"))
			}
			none := query(t, doc, "#none")
			if _, hidden := attrOK(none, "hidden"); hidden != (tt.servers != "") {
				t.Errorf("'no server matches' hidden=%v with servers %q", hidden, tt.servers)
			}
			want := 0
			if tt.servers != "" {
				want = len(strings.Split(tt.servers, ","))
			}
			if got := text(query(t, doc, "#count")); got != strconv.Itoa(want) {
				t.Errorf("count %s, want %d", got, want)
			}
			if got := attr(query(t, doc, "form.refresh input[name=next]"), "value"); got != "/"+tt.query {
				t.Errorf("refresh returns to %q, want %q", got, "/"+tt.query)
			}
		})
	}
}

// TestAppPage checks the version picker: packages newest first with their
// metadata, the desired one marked, and forms carrying the manifest
// version.
func TestAppPage(t *testing.T) {
	f := newFixture(t)
	doc := getPage(t, f.server(), "/servers/web-1/apps/hello")
	_, v := f.manifest("web-1")

	if got := attrs(t, doc, "table.packages tbody tr", "data-package"); strings.Join(got, ",") != strings.Join([]string{f.h3.String(), f.h2.String(), f.h1.String()}, ",") {
		t.Fatalf("packages %v, want newest first", got)
	}
	tests := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"desired marked, no deploy button on it", func(t *testing.T) {
			r := query(t, doc, `tr[data-package="`+f.h2.String()+`"]`)
			if !hasClass(r, "desired") || len(queryAll(t, r, "button.deploy")) != 0 || len(queryAll(t, r, ".badge.cur")) != 1 {
				t.Errorf("desired row: class %q, %d deploy buttons", attr(r, "class"), len(queryAll(t, r, "button.deploy")))
			}
			if len(queryAll(t, r, ".badge.serving")) != 1 {
				t.Error("the serving build has no serving badge")
			}
		}},
		{"commit linked to the repo", func(t *testing.T) {
			a := query(t, doc, `tr[data-package="`+f.h3.String()+`"] a[href*=github]`)
			if got := attr(a, "href"); got != "https://github.com/example/hello/commit/3333333333cc3333333333333333333333333333" {
				t.Errorf("commit link %q", got)
			}
		}},
		{"metadata shown", func(t *testing.T) {
			r := query(t, doc, `tr[data-package="`+f.h2.String()+`"]`)
			for _, want := range []string{"2d ago", "main", "alice", "@ci-7", "faster greetings"} {
				if !strings.Contains(text(r), want) {
					t.Errorf("row %q lacks %q", text(r), want)
				}
			}
			if got := text(query(t, doc, `tr[data-package="`+f.h3.String()+`"] .badge.new`)); got != "newest" {
				t.Errorf("newest badge %q", got)
			}
		}},
		{"forms carry the manifest version", func(t *testing.T) {
			for _, got := range attrs(t, doc, "form input[name=version]", "value") {
				if got != string(v) {
					t.Fatalf("form version %q, want %q", got, v)
				}
			}
			if n := len(queryAll(t, doc, "form input[name=version]")); n < 4 {
				t.Errorf("%d forms with a version, want deploy×2, restart, config, remove", n)
			}
		}},
		{"env settings", func(t *testing.T) {
			if got := attr(query(t, doc, "#env-hello form.config"), "action"); got != "/servers/web-1/envs/hello/config" {
				t.Errorf("config form action %q", got)
			}
			if got := attr(query(t, doc, "form.remove input[name=confirm]"), "value"); got != "yes" {
				t.Errorf("remove confirmation %q", got)
			}
			if _, ok := attrOK(query(t, doc, "form.remove input[name=confirm]"), "required"); !ok {
				t.Error("remove confirmation is not required")
			}
		}},
		{"promote to the group", func(t *testing.T) {
			if got := texts(t, doc, "#promote select[name=group] option"); strings.Join(got, ",") != "db (0 members),web (2 members)" {
				t.Errorf("groups %v", got)
			}
			if got := attr(query(t, doc, "#promote select[name=package] option[selected]"), "value"); got != f.h2.String() {
				t.Errorf("preselected %q, want the desired %s", got, f.h2)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}

	t.Run("attention counts only this app's rows", func(t *testing.T) {
		if n := len(queryAll(t, doc, "section.server header .badge.bad")); n != 0 {
			t.Errorf("hello on web-1 is fine, but the page flags %d problems (api's failure is not shown here)", n)
		}
		api := getPage(t, f.server(), "/servers/web-1/apps/api")
		if got := text(query(t, api, "section.server header .badge.bad")); got != "1 needs attention" {
			t.Errorf("api page: %q", got)
		}
	})
	t.Run("dirty packages ask for confirmation", func(t *testing.T) {
		doc := getPage(t, f.server(), "/servers/web-1/apps/api")
		b := query(t, doc, `tr[data-package="`+f.a2.String()+`"] button.deploy`)
		if attr(b, "data-confirm") == "" || len(queryAll(t, doc, `tr[data-package="`+f.a2.String()+`"] .badge.dirty`)) != 1 {
			t.Error("deploying the dirty a2 carries no warning")
		}
		if got := texts(t, doc, `tr[data-package="`+f.a1.String()+`"] a`); len(got) != 0 {
			t.Errorf("a1's repo ssh://example.com/api is not a known web URL, but its commit is linked: %v", got)
		}
	})
	t.Run("not allowed: no deploy buttons", func(t *testing.T) {
		doc := getPage(t, f.server(), "/servers/db-1/apps/api")
		if n := len(queryAll(t, doc, "button.deploy")); n != 0 {
			t.Errorf("%d deploy buttons for an app the config does not allow", n)
		}
		if !strings.Contains(text(query(t, doc, ".alert.warn")), "does not allow api on db-1") {
			t.Error("no explanation")
		}
	})
	t.Run("unknown server", func(t *testing.T) {
		wantCode(t, do(t, f.server(), http.MethodGet, "/servers/nope/apps/hello", nil), http.StatusNotFound)
	})
	t.Run("bad app name", func(t *testing.T) {
		wantCode(t, do(t, f.server(), http.MethodGet, "/servers/web-1/apps/Bad..Name", nil), http.StatusBadRequest)
	})
}

// TestDeploy picks a version through the form: the manifest changes in the
// bucket, the server is nudged, the change is in the audit log and the
// page says so.
func TestDeploy(t *testing.T) {
	f := newFixture(t)
	s := f.server()
	_, v := f.manifest("web-1")
	w := postForm(t, s, "/servers/web-1/apps/hello/deploy", url.Values{"package": {f.h3.String()}, "version": {string(v)}})
	wantCode(t, w, http.StatusSeeOther)
	if loc := w.Header().Get("Location"); loc != "/servers/web-1/apps/hello?done=deploy&what="+url.QueryEscape(f.h3.String()) {
		t.Errorf("redirect to %q", loc)
	}
	if got := f.desired("web-1", "hello"); got != f.h3.String() {
		t.Fatalf("web-1 hello = %s, want %s", got, f.h3)
	}
	if got := f.desired("web-1", "api"); got != f.a1.String() {
		t.Errorf("web-1 api changed to %s", got)
	}
	if got := f.nudges.servers(); !slices.Equal(got, []string{"web-1"}) {
		t.Errorf("nudged %v, want [web-1]", got)
	}
	recs := f.audit("web-1")
	if len(recs) != 1 || recs[0].User != auth.LocalUser || recs[0].Action != "set hello to "+f.h3.String() {
		t.Fatalf("audit %+v", recs)
	}
	if b, _ := recs[0].Before.Lookup("hello"); b.Package != f.h2 {
		t.Errorf("audit before: %v", b.Package)
	}
	if a, _ := recs[0].After.Lookup("hello"); a.Package != f.h3 {
		t.Errorf("audit after: %v", a.Package)
	}

	doc := getPage(t, s, w.Header().Get("Location"))
	if got := text(query(t, doc, ".alert.flash")); !strings.Contains(got, "web-1 will deploy hello "+f.h3.Commit) {
		t.Errorf("flash %q", got)
	}
	if !hasClass(query(t, doc, `tr[data-package="`+f.h3.String()+`"]`), "desired") {
		t.Error("the page does not show the new desired package")
	}
	// The main page (from the cache) knows without a refresh.
	main := getPage(t, s, "/")
	if got := attrs(t, main, "section[data-server=web-1] tr[data-app=hello] span.pkg", "title"); len(got) != 2 || got[0] != f.h3.String() || got[1] != f.h2.String() {
		t.Errorf("main page shows desired, serving = %v, want the new %s and the still serving %s", got, f.h3, f.h2)
	}
	if r := query(t, main, "section[data-server=web-1] tr[data-app=hello]"); !hasClass(r, "progress") || hasClass(r, "drift") {
		t.Errorf("web-1 hello has class %q: want it in progress until the host catches up, not drift", attr(r, "class"))
	}
	// History shows it, before → after.
	hist := getPage(t, s, "/servers/web-1")
	if got := texts(t, hist, "table.history tbody tr"); len(got) != 1 || !strings.Contains(got[0], "hello: "+f.h2.ID()+" → "+f.h3.ID()) || !strings.Contains(got[0], auth.LocalUser) {
		t.Errorf("history %q", got)
	}
}

// TestFormErrors checks every way a form write is refused: nothing is
// written, nobody is nudged, and the page says why with the right status.
func TestFormErrors(t *testing.T) {
	f := newFixture(t)
	_, v1 := f.manifest("web-1")
	tests := []struct {
		name   string
		target string
		form   url.Values
		code   int
		say    string // in #error or #conflict
	}{
		{"stale version", "/servers/web-1/apps/hello/deploy", url.Values{"package": {f.h3.String()}, "version": {"0123"}}, http.StatusPreconditionFailed, "changed after this page was loaded"},
		{"missing version", "/servers/web-1/apps/hello/deploy", url.Values{"package": {f.h3.String()}}, http.StatusPreconditionFailed, "Nothing was overwritten"},
		{"app not allowed", "/servers/db-1/apps/api/deploy", url.Values{"package": {f.a1.String()}, "version": {""}}, http.StatusBadRequest, "not allowed on server db-1"},
		{"package of another app", "/servers/web-1/apps/hello/deploy", url.Values{"package": {f.a1.String()}, "version": {string(v1)}}, http.StatusBadRequest, "is not a package of hello"},
		{"no such package", "/servers/web-1/apps/hello/deploy", url.Values{"package": {"hello/hello-20260101T000000Z-abcdefabcdef.tar.zst"}, "version": {string(v1)}}, http.StatusBadRequest, "does not exist in the bucket"},
		{"malformed package", "/servers/web-1/apps/hello/deploy", url.Values{"package": {"../../etc/passwd"}, "version": {string(v1)}}, http.StatusBadRequest, "invalid package name"},
		{"remove unconfirmed", "/servers/web-1/apps/hello/remove", url.Values{"version": {string(v1)}}, http.StatusBadRequest, "tick the box"},
		{"remove absent app", "/servers/db-1/apps/hello/remove", url.Values{"version": {""}, "confirm": {"yes"}}, http.StatusBadRequest, "is not in the manifest of server db-1"},
		{"bad config key", "/servers/web-1/envs/hello/config", url.Values{"version": {string(v1)}, "config": {"GOOD=1\nbad-key=2"}}, http.StatusBadRequest, "config line 2"},
		{"restart stale", "/servers/web-1/envs/hello/restart", url.Values{"version": {"x"}}, http.StatusPreconditionFailed, "changed after this page was loaded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.snapshot()
			nudged := len(f.nudges.servers())
			w := postForm(t, f.server(), tt.target, tt.form)
			wantCode(t, w, tt.code)
			doc := parseHTML(t, w.Body.Bytes())
			var msg string
			for _, n := range append(queryAll(t, doc, "#error"), queryAll(t, doc, "#conflict")...) {
				msg += text(n)
			}
			if !strings.Contains(msg, tt.say) {
				t.Errorf("page says %q, want %q", msg, tt.say)
			}
			if after := f.snapshot(); after != before {
				t.Errorf("the bucket changed:\n%s\n→\n%s", before, after)
			}
			if n := len(f.nudges.servers()); n != nudged {
				t.Errorf("a refused write nudged")
			}
		})
	}
}

// snapshot returns every manifest in the bucket, for "nothing changed"
// checks.
func (f *fixture) snapshot() string {
	f.t.Helper()
	var b strings.Builder
	for _, s := range []string{"web-1", "web-2", "db-1", "old-1"} {
		m, v := f.manifest(s)
		b.WriteString(s + " " + string(v) + " " + string(m.Marshal()))
	}
	b.WriteString(strconv.Itoa(len(f.audit("web-1")) + len(f.audit("db-1"))))
	return b.String()
}

// TestConflictPage checks that a 412 page shows the new state and who made
// it, with forms carrying the new version.
func TestConflictPage(t *testing.T) {
	f := newFixture(t)
	s := f.server()
	_, stale := f.manifest("web-1")
	// Another pushui user changes web-1 first, through the UI: audited.
	w := postForm(t, s, "/servers/web-1/apps/hello/deploy", url.Values{"package": {f.h1.String()}, "version": {string(stale)}})
	wantCode(t, w, http.StatusSeeOther)
	_, fresh := f.manifest("web-1")

	w = postForm(t, s, "/servers/web-1/apps/hello/deploy", url.Values{"package": {f.h3.String()}, "version": {string(stale)}})
	wantCode(t, w, http.StatusPreconditionFailed)
	doc := parseHTML(t, w.Body.Bytes())
	banner := text(query(t, doc, "#conflict"))
	if !strings.Contains(banner, "set hello to "+f.h1.String()) || !strings.Contains(banner, "by "+auth.LocalUser) {
		t.Errorf("banner does not say who changed what: %q", banner)
	}
	if !hasClass(query(t, doc, `tr[data-package="`+f.h1.String()+`"]`), "desired") {
		t.Error("conflict page does not show the new desired package")
	}
	for _, got := range attrs(t, doc, "form input[name=version]", "value") {
		if got != string(fresh) {
			t.Fatalf("conflict page form carries %q, want the new version %q", got, fresh)
		}
	}
	if got := f.desired("web-1", "hello"); got != f.h1.String() {
		t.Errorf("overwritten: %s", got)
	}
}

// TestEnvActions covers restart, config and remove through their forms.
func TestEnvActions(t *testing.T) {
	f := newFixture(t)
	s := f.server()
	version := func() string { _, v := f.manifest("web-1"); return string(v) }
	entry := func(env string) (manifest.Entry, bool) {
		m, _ := f.manifest("web-1")
		return m.Lookup(env)
	}

	t.Run("restart sets a new token each time", func(t *testing.T) {
		var tokens []string
		for range 2 {
			w := postForm(t, s, "/servers/web-1/envs/hello/restart", url.Values{"version": {version()}})
			wantCode(t, w, http.StatusSeeOther)
			if loc := w.Header().Get("Location"); loc != "/servers/web-1/apps/hello?done=restart&env=hello" {
				t.Errorf("redirect %q", loc)
			}
			e, _ := entry("hello")
			tokens = append(tokens, e.Restart)
		}
		if tokens[0] == "" || tokens[0] == tokens[1] {
			t.Errorf("restart tokens %q: want two different non-empty ones", tokens)
		}
		if e, _ := entry("hello"); e.Package != f.h2 {
			t.Errorf("restart changed the package to %s", e.Package)
		}
	})
	t.Run("config", func(t *testing.T) {
		w := postForm(t, s, "/servers/web-1/envs/api/config", url.Values{"version": {version()}, "config": {"# comment\nLOG_LEVEL = debug\n\nURL=http://x/?a=b\n"}})
		wantCode(t, w, http.StatusSeeOther)
		e, _ := entry("api")
		if len(e.Config) != 2 || e.Config["LOG_LEVEL"] != "debug" || e.Config["URL"] != "http://x/?a=b" {
			t.Errorf("config %v", e.Config)
		}
		doc := getPage(t, s, "/servers/web-1/apps/api")
		if got := text(query(t, doc, "#config-api")); got != "LOG_LEVEL=debug URL=http://x/?a=b" {
			t.Errorf("text area shows %q", got)
		}
		recs := f.audit("web-1")
		if recs[0].Action != "config api" || !slices.ContainsFunc(fleetview.DescribeChange(recs[0].Before, recs[0].After), func(s string) bool { return strings.HasPrefix(s, "api: config {} → {LOG_LEVEL=debug, URL=") }) {
			t.Errorf("audit %q %q", recs[0].Action, fleetview.DescribeChange(recs[0].Before, recs[0].After))
		}
	})
	t.Run("remove", func(t *testing.T) {
		w := postForm(t, s, "/servers/web-1/apps/api/remove", url.Values{"version": {version()}, "confirm": {"yes"}})
		wantCode(t, w, http.StatusSeeOther)
		if _, ok := entry("api"); ok {
			t.Fatal("api is still in the manifest")
		}
		if _, ok := entry("hello"); !ok {
			t.Fatal("hello was removed too")
		}
		doc := getPage(t, s, w.Header().Get("Location"))
		if got := text(query(t, doc, ".alert.flash")); got != "Removed api from web-1: its host will stop it." {
			t.Errorf("flash %q", got)
		}
	})
	if got := len(f.nudges.servers()); got != 4 {
		t.Errorf("%d nudges for 4 writes", got)
	}
}

// TestPromote deploys one version to a group from a server's app page:
// one write of the group's manifest, one nudge for the group, no server
// manifest touched.
func TestPromote(t *testing.T) {
	f := newFixture(t)
	s := f.server()
	before := f.snapshot()
	w := postForm(t, s, "/promote", url.Values{"package": {f.h1.String()}, "group": {"web"}, "from": {"web-1"}})
	wantCode(t, w, http.StatusSeeOther)
	// It lands on the group's page, which names the build and follows the
	// members to it.
	doc := getPage(t, s, w.Header().Get("Location"))
	if got := text(query(t, doc, ".alert.flash")); !strings.Contains(got, "groups/web.json, revision 1") || !strings.Contains(got, "its 2 members") ||
		!strings.Contains(got, "hello "+f.h1.Commit+" “first”") {
		t.Errorf("flash %q: want the revision, the members and the build by commit and note", got)
	}
	if got := text(query(t, doc, "#entries tr[data-env=hello] td.done")); got != "0 of 2" {
		t.Errorf("members serving it: %q, want 0 of 2 (the page follows them)", got)
	}
	m, _, err := f.store.ReadManifest(t.Context(), manifest.Group("web"))
	if e, ok := m.Lookup("hello"); err != nil || !ok || e.Package != f.h1 {
		t.Errorf("groups/web.json = %+v, %v", m, err)
	}
	if f.snapshot() != before {
		t.Error("a server manifest changed")
	}
	if recs, _ := f.store.ListAudit(t.Context(), manifest.Group("web"), 10); len(recs) != 1 || recs[0].Action != "set hello to "+f.h1.String() || recs[0].User == "" && false {
		t.Errorf("group audit %v", recs)
	}
	if got := f.nudges.servers(); !slices.Equal(got, []string{"group:web"}) {
		t.Errorf("nudged %v", got)
	}
	// Again: nothing to change, nothing written.
	w = postForm(t, s, "/promote", url.Values{"package": {f.h1.String()}, "group": {"web"}})
	wantCode(t, w, http.StatusSeeOther)
	if got := text(query(t, getPage(t, s, w.Header().Get("Location")), ".alert.flash")); !strings.Contains(got, "Nothing to save") {
		t.Errorf("second promote %q", got)
	}
	// An app the group may not carry, and an unknown group, are refused.
	wantCode(t, postForm(t, s, "/promote", url.Values{"package": {f.a2.String()}, "group": {"db"}}), http.StatusBadRequest)
	wantCode(t, postForm(t, s, "/promote", url.Values{"package": {f.a2.String()}, "group": {"nope"}}), http.StatusNotFound)
}

// TestRefresh checks that the main page comes from the cache and the
// refresh button lists the bucket again.
func TestRefresh(t *testing.T) {
	f := newFixture(t)
	s := f.server()
	f.setManifest("new-1", f.h1)
	if n := len(queryAll(t, getPage(t, s, "/"), "section[data-server=new-1]")); n != 0 {
		t.Fatal("the main page read the bucket again without a refresh")
	}
	w := postForm(t, s, "/refresh", url.Values{"next": {"/?server=new"}})
	wantCode(t, w, http.StatusSeeOther)
	if loc := w.Header().Get("Location"); loc != "/?server=new" {
		t.Errorf("refresh returned to %q", loc)
	}
	if got := attrs(t, getPage(t, s, "/?server=new"), "section.server", "data-server"); !slices.Equal(got, []string{"new-1"}) {
		t.Errorf("after refresh: %v", got)
	}
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/\\evil", ""} {
		w := postForm(t, s, "/refresh", url.Values{"next": {next}})
		if loc := w.Header().Get("Location"); loc != "/" {
			t.Errorf("next=%q redirected to %q", next, loc)
		}
	}
}

// countingBucket wraps the real Store and counts metadata requests.
type countingBucket struct {
	*blobstore.Store
	mu         sync.Mutex
	batches    [][]manifest.PackageName
	singleStat int
	failBatch  error
}

func (c *countingBucket) StatPackages(ctx context.Context, names []manifest.PackageName) ([]blobstore.PackageInfo, error) {
	c.mu.Lock()
	c.batches = append(c.batches, names)
	fail := c.failBatch
	c.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	return c.Store.StatPackages(ctx, names)
}

func (c *countingBucket) StatPackage(ctx context.Context, name manifest.PackageName) (blobstore.PackageInfo, error) {
	c.mu.Lock()
	c.singleStat++
	c.mu.Unlock()
	return c.Store.StatPackage(ctx, name)
}

// TestPackageMetadataCache checks that package metadata is fetched in one
// concurrent batch on first use and never again: a refresh knows each
// app's 20 newest (for the labels' notes and links), the app page fetches
// the rest at once.
func TestPackageMetadataCache(t *testing.T) {
	f := newFixture(t)
	for i := range 40 {
		f.addPackage("hello", fixtureNow.Add(-time.Duration(100+i)*time.Hour), fmt.Sprintf("%012x", i+1), false, "", "")
	}
	cb := &countingBucket{Store: f.store}
	s, err := newServer(t.Context(), cb, Options{Store: f.store, Config: f.conf, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return fixtureNow }})
	if err != nil {
		t.Fatal(err)
	}
	if got := lens(cb.batches); len(got) != 2 || got[0]+got[1] != 22 || cb.singleStat != 0 {
		t.Fatalf("start: batches of %v names, %d single stats; want hello's 20 newest and api's 2", got, cb.singleStat)
	}
	doc := getPage(t, s, "/servers/web-1/apps/hello")
	if n := len(queryAll(t, doc, "table.packages tbody tr")); n != 43 {
		t.Fatalf("%d packages listed, want 43", n)
	}
	if len(cb.batches) != 3 || len(cb.batches[2]) != 23 || cb.singleStat != 0 {
		t.Fatalf("first view: batches of %v names, %d single stats; want one more of the 23 not known", lens(cb.batches), cb.singleStat)
	}
	getPage(t, s, "/servers/web-2/apps/hello")
	w := do(t, s, http.MethodGet, "/api/apps/hello/packages", nil)
	wantCode(t, w, http.StatusOK)
	if len(cb.batches) != 3 || cb.singleStat != 0 {
		t.Errorf("metadata fetched again: %d batches, %d single stats", len(cb.batches), cb.singleStat)
	}
	// A new package: only it is fetched.
	p := f.addPackage("hello", fixtureNow, "feedfacefeed0000000000000000000000000000", false, "", "new")
	getPage(t, s, "/servers/web-1/apps/hello")
	if len(cb.batches) != 4 || len(cb.batches[3]) != 1 || cb.batches[3][0] != p {
		t.Errorf("after one new package: batches %v", lens(cb.batches))
	}
}

// TestPackageMetadataFallback checks that one unreadable package does not
// hide the others' metadata.
func TestPackageMetadataFallback(t *testing.T) {
	f := newFixture(t)
	cb := &countingBucket{Store: f.store, failBatch: errors.New("one package broke the batch")}
	s, err := newServer(t.Context(), cb, Options{Store: f.store, Config: f.conf, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return fixtureNow }})
	if err != nil {
		t.Fatal(err)
	}
	doc := getPage(t, s, "/servers/web-1/apps/hello")
	if cb.singleStat != 5 { // hello's 3 and api's 2, each once
		t.Errorf("%d single stats after the batches failed, want 5", cb.singleStat)
	}
	if !strings.Contains(text(query(t, doc, `tr[data-package="`+f.h2.String()+`"]`)), "faster greetings") {
		t.Error("metadata missing after the fallback")
	}
}

func lens(b [][]manifest.PackageName) []int {
	var out []int
	for _, x := range b {
		out = append(out, len(x))
	}
	return out
}

// TestPagesAreSafe checks the security headers and that no page needs
// inline script or style, so the CSP can forbid them.
func TestPagesAreSafe(t *testing.T) {
	f := newFixture(t)
	s := f.server()
	for _, target := range []string{"/", "/servers/web-1", "/servers/web-1/apps/hello", "/servers/nope"} {
		t.Run(target, func(t *testing.T) {
			w := do(t, s, http.MethodGet, target, nil)
			h := w.Header()
			csp := h.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			if strings.Contains(csp, "unsafe-inline") {
				t.Errorf("CSP allows inline code: %q", csp)
			}
			for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"} {
				if got := h.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
			doc := parseHTML(t, w.Body.Bytes())
			for _, sc := range queryAll(t, doc, "script") {
				if attr(sc, "src") == "" || text(sc) != "" {
					t.Errorf("inline script: %q", text(sc))
				}
			}
			if n := len(queryAll(t, doc, "style")) + len(queryAll(t, doc, "[style]")); n != 0 {
				t.Errorf("%d inline styles", n)
			}
			var walk func(*html.Node)
			walk = func(n *html.Node) {
				for _, a := range n.Attr {
					if strings.HasPrefix(a.Key, "on") {
						t.Errorf("inline handler %s=%q", a.Key, a.Val)
					}
				}
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					walk(c)
				}
			}
			walk(doc)
		})
	}
}

// TestStatic checks the embedded assets and their caching.
func TestStatic(t *testing.T) {
	s := newFixture(t).server()
	doc := getPage(t, s, "/")
	css := attr(query(t, doc, "link[rel=stylesheet]"), "href")
	js := attr(query(t, doc, "script"), "src")
	for _, c := range []struct{ url, ctype string }{{css, "text/css; charset=utf-8"}, {js, "text/javascript; charset=utf-8"}} {
		w := do(t, s, http.MethodGet, c.url, nil)
		wantCode(t, w, http.StatusOK)
		if got := w.Header().Get("Content-Type"); got != c.ctype {
			t.Errorf("%s: Content-Type %q", c.url, got)
		}
		if got := w.Header().Get("Cache-Control"); !strings.Contains(got, "immutable") {
			t.Errorf("%s: Cache-Control %q", c.url, got)
		}
	}
	if w := do(t, s, http.MethodGet, "/static/style.css?v=old", nil); w.Header().Get("Cache-Control") != "no-cache" {
		t.Error("a stale version link is cached forever")
	}
}

// TestOutput checks the on-demand script output.
func TestOutput(t *testing.T) {
	s := newFixture(t).server()
	w := do(t, s, http.MethodGet, "/servers/web-1/envs/api/output", nil)
	wantCode(t, w, http.StatusOK)
	if w.Body.String() != "health check failed: connection refused\n" || w.Header().Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("output %q (%s)", w.Body.String(), w.Header().Get("Content-Type"))
	}
	wantCode(t, do(t, s, http.MethodGet, "/servers/web-1/envs/nope/output", nil), http.StatusNotFound)
	wantCode(t, do(t, s, http.MethodGet, "/servers/db-1/envs/hello/output", nil), http.StatusNotFound)
	// Server and app pages show it inline.
	doc := getPage(t, s, "/servers/web-1")
	if got := text(query(t, doc, "tr[data-failure-app=api] details.err pre")); got != "health check failed: connection refused" {
		t.Errorf("inline output %q", got)
	}
}
