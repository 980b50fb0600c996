package pushui

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/internal/fleetview"
	"github.com/pushpull/pushpull/manifest"
)

// TestRowStates checks how a row says what is happening: a deploy, a
// rollback to a kept build, a restart and a removal under way are in
// progress (blue) with their own label; a host yet to read the newest
// revision is in progress too; a failure needs attention; serving another
// build with nothing under way is drift; and a stale host's rows are never
// in progress. The server's badges count each kind.
func TestRowStates(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	v1 := manifest.PackageName{App: "hello", Built: now.Add(-2 * time.Hour), Commit: "111111111111", Format: manifest.FormatZstd}
	v2 := manifest.PackageName{App: "hello", Built: now.Add(-time.Hour), Commit: "222222222222", Format: manifest.FormatZstd}
	for _, tc := range []struct {
		name     string
		desired  *manifest.PackageName // nil: no entry
		es       manifest.EnvStatus
		hostRev  int64 // the revision pulld acted on; the manifest's is 2
		stale    bool
		class    string
		label    string
		note     string
		problems int
		busy     int
		drifting int
	}{
		{"deploying", &v2, manifest.EnvStatus{Serving: v1.String(), State: manifest.StateDeploying, Action: "deploy"}, 2, false, "progress", "DEPLOYING", "", 0, 1, 0},
		{"rollback", &v1, manifest.EnvStatus{Serving: v2.String(), State: manifest.StateDeploying, Action: "rollback"}, 2, false, "progress", "ROLLING BACK", "rollback, no download", 0, 1, 0},
		{"restart", &v1, manifest.EnvStatus{Serving: v1.String(), State: manifest.StateDeploying, Action: "restart"}, 2, false, "progress", "RESTARTING", "", 0, 1, 0},
		{"removal", nil, manifest.EnvStatus{Serving: v1.String(), State: manifest.StateDeploying, Action: "stop"}, 2, false, "progress", "REMOVING", "", 0, 1, 0},
		{"not read yet", &v2, manifest.EnvStatus{Serving: v1.String(), State: manifest.StateServing}, 1, false, "progress", "SERVING_BUILD", "", 0, 1, 0},
		{"failed", &v2, manifest.EnvStatus{Desired: v2.String(), Serving: v1.String(), State: manifest.StateRolledBack, Error: "POST_RESTART exited with status 1"}, 2, false, "failed", "ROLLED_BACK", "", 1, 0, 0},
		{"drift", &v2, manifest.EnvStatus{Serving: v1.String(), State: manifest.StateServing}, 2, false, "drift", "SERVING_BUILD", "", 0, 0, 1},
		{"stale host", &v2, manifest.EnvStatus{Serving: v1.String(), State: manifest.StateDeploying, Action: "deploy"}, 2, true, "drift", "DEPLOYING", "", 0, 0, 1},
		{"serving", &v2, manifest.EnvStatus{Serving: v2.String(), State: manifest.StateServing}, 2, false, "", "SERVING_BUILD", "", 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &manifest.Manifest{Revision: 2}
			if tc.desired != nil {
				m.Packages = []manifest.Entry{{Package: *tc.desired}}
			}
			es := tc.es
			es.Env, es.App, es.Updated = "hello", "hello", now
			st := &manifest.Status{Server: "web-1", Time: now.Add(-time.Minute), PollSeconds: 300, ManifestRevision: tc.hostRev, Envs: []manifest.EnvStatus{es}}
			if tc.stale {
				st.Time = now.Add(-time.Hour)
			}
			s := &fleetview.Server{Name: "web-1", Manifest: m, Version: "1", Status: st}
			conf := &manifest.PushConfig{Servers: map[string][]string{"web-1": {"hello"}}}
			v := fleetview.BuildServer(s, conf, nil, nil, now, false, fleetview.NewLabels())
			if len(v.Rows) != 1 {
				t.Fatalf("%d rows", len(v.Rows))
			}
			r := v.Rows[0]
			if r.Class != tc.class || r.StateLabel != tc.label || r.ActionNote != tc.note {
				t.Errorf("row class %q, label %q, note %q; want %q, %q, %q", r.Class, r.StateLabel, r.ActionNote, tc.class, tc.label, tc.note)
			}
			if v.Problems != tc.problems || v.Busy != tc.busy || v.Drifting != tc.drifting {
				t.Errorf("badges: %d need attention, %d in progress, %d drift; want %d, %d, %d", v.Problems, v.Busy, v.Drifting, tc.problems, tc.busy, tc.drifting)
			}
		})
	}
}

// TestStateFilter filters the main page by state: what needs attention
// (web-1's api failed; web-2 is stale), what is in progress, silent hosts.
func TestStateFilter(t *testing.T) {
	f := newFixture(t)
	f.setStatus(&manifest.Status{Server: "db-1", PollSeconds: 300, Time: fixtureNow, Envs: []manifest.EnvStatus{
		{Env: "hello", App: "hello", Desired: f.h3.String(), Serving: f.h2.String(), State: manifest.StateDeploying, Action: "deploy", Updated: fixtureNow},
	}})
	s := f.server()
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{"db-1", "old-1", "web-1", "web-2"}},
		{"?state=attention", []string{"web-1", "web-2"}},
		{"?state=stale", []string{"web-2"}},
		{"?state=progress", []string{"db-1"}},
		{"?state=drift", []string{"web-2"}}, // stale, DEPLOYING for two hours: not in progress
		{"?state=attention&server=web-1", []string{"web-1"}},
		{"?state=bogus", []string{"db-1", "old-1", "web-1", "web-2"}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			doc := getPage(t, s, "/"+tc.query)
			if got := attrs(t, doc, "section.server", "data-server"); !slices.Equal(got, tc.want) {
				t.Errorf("servers %v, want %v", got, tc.want)
			}
		})
	}
}

// TestReleaseNotesAndLinks: rows name builds by release note first, link
// their commits when the repository is known, and link the changes from
// the serving commit to the desired one.
func TestReleaseNotesAndLinks(t *testing.T) {
	f := newFixture(t)
	s := f.server()
	doc := getPage(t, s, "/")
	web1 := query(t, doc, `section[data-server="web-1"] tr[data-app="hello"]`)
	if got := text(query(t, web1, ".relnote")); got != "faster greetings" {
		t.Errorf("web-1 hello's note %q, want the release note of h2", got)
	}
	if got := attr(query(t, web1, "span.pkg a"), "href"); got != "https://github.com/example/hello/commit/2222222222bb2222222222222222222222222222" {
		t.Errorf("commit link %q", got)
	}
	web2 := query(t, doc, `section[data-server="web-2"] tr[data-app="hello"]`)
	if got := attr(query(t, web2, "a.compare"), "href"); got != "https://github.com/example/hello/compare/2222222222bb2222222222222222222222222222...3333333333cc3333333333333333333333333333" {
		t.Errorf("compare link %q, want serving h2 ... desired h3", got)
	}
	for _, tc := range []struct{ repo, want string }{
		{"https://gitlab.com/group/sub/hello.git", "https://gitlab.com/group/sub/hello/-/compare/aa...bb"},
		{"https://bitbucket.org/o/r", ""},
		{"", ""},
	} {
		from := &fleetview.Label{Repo: tc.repo, FullCommit: "aa"}
		to := &fleetview.Label{Repo: tc.repo, FullCommit: "bb"}
		if got := fleetview.CompareURL(from, to); got != tc.want {
			t.Errorf("compareURL(%q) = %q, want %q", tc.repo, got, tc.want)
		}
	}
}

// TestHistoryOutcomes: the history says what the hosts did with the build
// in force (here web-1 rolled back), what they had done with an older
// change before a later one replaced it (from the outcomes pulld keeps),
// and its "roll back to this" deploys that older build again.
func TestHistoryOutcomes(t *testing.T) {
	f := newFixture(t)
	s := f.server()
	deploy := func(p manifest.PackageName) {
		t.Helper()
		_, v := f.manifest("web-1")
		wantCode(t, postForm(t, s, "/servers/web-1/apps/hello/deploy", url.Values{"package": {p.String()}, "version": {string(v)}}), http.StatusSeeOther)
	}
	deploy(f.h1)
	deploy(f.h3)
	recs, err := f.store.ListAudit(t.Context(), manifest.Server("web-1"), 10)
	if err != nil || len(recs) != 2 {
		t.Fatalf("audit: %d records, %v", len(recs), err)
	}
	// What pulld keeps: it deployed h1 after the first change, and h3,
	// rolled back, after the second.
	recent := []manifest.Outcome{
		{Package: f.h3.String(), Action: "deploy", State: manifest.StateRolledBack, Time: recs[0].Time.Add(2 * time.Second)},
		{Package: f.h1.String(), Action: "deploy", State: manifest.StateServing, Time: recs[1].Time}, // before the second change, made at once
	}
	f.setStatus(&manifest.Status{Server: "web-1", PollSeconds: 300, Time: fixtureNow, ManifestRevision: 3, Groups: []manifest.GroupStatus{{Name: "web"}}, Envs: []manifest.EnvStatus{
		{Env: "hello", App: "hello", Desired: f.h3.String(), Serving: f.h1.String(), State: manifest.StateRolledBack, Error: "POST_RESTART exited with status 1", Updated: fixtureNow, Recent: recent},
	}})
	s.svc.View.RefreshServer(t.Context(), "web-1")
	doc := getPage(t, s, "/servers/web-1")
	rows := queryAll(t, doc, "#history tbody tr")
	if len(rows) != 2 {
		t.Fatalf("%d history rows, want 2", len(rows))
	}
	if got := text(query(t, rows[0], "td.outcome")); !strings.Contains(got, "serving on 0 of 1") || !strings.Contains(got, "rolled back on web-1") {
		t.Errorf("newest row's outcome %q", got)
	}
	if len(queryAll(t, rows[0], "form.back")) != 0 {
		t.Error("the change in force offers to roll back to itself")
	}
	if got := text(query(t, rows[1], "td.outcome")); !strings.Contains(got, "replaced by a later change") || !strings.Contains(got, "had served on 1 of 1") {
		t.Errorf("older row's outcome %q, want replaced after serving on web-1", got)
	}
	form := query(t, rows[1], "form.back")
	vals := url.Values{}
	for _, in := range queryAll(t, form, "input") {
		vals.Set(attr(in, "name"), attr(in, "value"))
	}
	if vals.Get("package") != f.h1.String() {
		t.Fatalf("roll back to %q, want %s", vals.Get("package"), f.h1)
	}
	wantCode(t, postForm(t, s, attr(form, "action"), vals), http.StatusSeeOther)
	if got := f.desired("web-1", "hello"); got != f.h1.String() {
		t.Errorf("after roll back to this: hello = %s, want %s", got, f.h1)
	}
}

// TestGroupHistoryOutcome: a group's history says how many members serve
// the build in force, and an older row rolls the group back.
func TestGroupHistoryOutcome(t *testing.T) {
	f := groupFixture(t) // group web: hello h3; web-1 serves h2, web-2 pins h1
	s := f.server()
	version := func() string {
		_, v, _ := f.store.ReadManifest(t.Context(), manifest.Group("web"))
		return string(v)
	}
	for _, p := range []manifest.PackageName{f.h2, f.h3} {
		wantCode(t, postForm(t, s, "/groups/web/apps/hello/deploy", url.Values{"package": {p.String()}, "version": {version()}}), http.StatusSeeOther)
	}
	rows := queryAll(t, getPage(t, s, "/groups/web"), "#history tbody tr")
	if len(rows) != 2 {
		t.Fatalf("%d history rows, want 2", len(rows))
	}
	if got := text(query(t, rows[0], "td.outcome")); !strings.Contains(got, "serving on 0 of 2") {
		t.Errorf("newest row's outcome %q, want none of the 2 members serving h3 yet", got)
	}
	form := query(t, rows[1], "form.back")
	if got := attr(form, "action"); got != "/groups/web/apps/hello/deploy" {
		t.Errorf("roll back to this posts to %q", got)
	}
}

// TestErrorsRelativeToApp: within an app's row its packages are named
// without the app's directory.
func TestErrorsRelativeToApp(t *testing.T) {
	var r fleetview.Row
	fleetview.FillStatus(&r, manifest.EnvStatus{App: "hello", State: manifest.StateRolledBack,
		Error: "pkginstall: rolled back to hello/hello-20261122T101500Z-0123456789ab.tar.zst"}, time.Now(), false, fleetview.NewLabels())
	if want := "pkginstall: rolled back to hello-20261122T101500Z-0123456789ab.tar.zst"; r.Error != want {
		t.Errorf("error %q, want %q", r.Error, want)
	}
}

// TestPastOutcome: an older change's outcome counts, per host, the last
// outcome for its package between the change and the next one, allowing
// for clock skew, and says which hosts kept no record that far back.
func TestPastOutcome(t *testing.T) {
	f := newFixture(t)
	p, other := f.h1, f.h2.String()
	from := fixtureNow.Add(-time.Hour)
	until := fixtureNow
	out := func(pkg string, state manifest.State, at time.Time) manifest.Outcome {
		return manifest.Outcome{Package: pkg, Action: "deploy", State: state, Time: at}
	}
	host := func(name string, recent ...manifest.Outcome) *manifest.Status {
		return &manifest.Status{Server: name, Envs: []manifest.EnvStatus{{Env: "hello", App: "hello", Recent: recent}}}
	}
	full := func(first manifest.Outcome) []manifest.Outcome { // as many as a host keeps, all after from
		r := []manifest.Outcome{first}
		for len(r) < manifest.RecentOutcomes {
			r = append(r, out(other, manifest.StateServing, from.Add(time.Minute)))
		}
		return r
	}
	for _, tc := range []struct {
		name  string
		hosts []*manifest.Status
		want  string
	}{
		{"served", []*manifest.Status{host("a", out(p.String(), manifest.StateServing, from.Add(time.Minute)))}, "had served on 1 of 1"},
		{"skewed clock", []*manifest.Status{host("a", out(p.String(), manifest.StateServing, from.Add(-10*time.Second)))}, "had served on 1 of 1"},
		{"failed then served: the last counts", []*manifest.Status{host("a",
			out(p.String(), manifest.StateServing, from.Add(2*time.Minute)),
			out(p.String(), manifest.StateFailed, from.Add(time.Minute)))}, "had served on 1 of 1"},
		{"rolled back", []*manifest.Status{host("a", out(p.String(), manifest.StateRolledBack, from.Add(time.Minute))), host("b", out(p.String(), manifest.StateServing, from.Add(time.Minute)))}, "had served on 1 of 2; rolled back on a"},
		{"failed", []*manifest.Status{host("a", out(p.String(), manifest.StateFailed, from.Add(time.Minute)))}, "had served on 0 of 1; failed on a"},
		{"after the next change: not this change's", []*manifest.Status{host("a", out(p.String(), manifest.StateServing, until.Add(time.Minute)), out(other, manifest.StateServing, from.Add(-time.Hour)))}, "had served on 0 of 1"},
		{"an earlier deploy of the same build", []*manifest.Status{host("a", out(p.String(), manifest.StateServing, from.Add(-time.Hour)))}, "had served on 0 of 1"},
		{"no outcomes kept", []*manifest.Status{host("a")}, "had served on 0 of 1; no record on 1"},
		{"kept outcomes do not reach back", []*manifest.Status{host("a", full(out(other, manifest.StateServing, until.Add(-time.Minute)))...)}, "had served on 0 of 1; no record on 1"},
		{"kept outcomes full but include it", []*manifest.Status{host("a", full(out(p.String(), manifest.StateServing, until.Add(-time.Minute)))...)}, "had served on 1 of 1"},
		{"no hosts", nil, "replaced by a later change"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fleetview.PastOutcome(tc.hosts, "hello", p, from, until)
			if !strings.HasPrefix(got, "replaced by a later change") || !strings.HasSuffix(got, tc.want) {
				t.Errorf("pastOutcome = %q, want it to end %q", got, tc.want)
			}
		})
	}
}

// TestDebPackages: a .deb is listed, labelled, deployed and described by
// the API as the other formats are.
func TestDebPackages(t *testing.T) {
	f := newFixture(t)
	deb := f.addPackageAs(manifest.FormatDeb, "hello", fixtureNow.Add(-time.Hour), "4444444444dd4444444444444444444444444444", false, "https://github.com/example/hello.git", "packaged as a .deb")
	s := f.server()
	doc := getPage(t, s, "/servers/web-1/apps/hello")
	row := query(t, doc, `tr[data-package="`+deb.String()+`"]`)
	if got := text(query(t, row, "td.note")); got != "packaged as a .deb" {
		t.Errorf("the .deb's row has the note %q", got)
	}
	if len(queryAll(t, row, ".badge.deb")) != 1 {
		t.Error("the .deb's row does not say it is one")
	}
	if len(queryAll(t, query(t, doc, `tr[data-package="`+f.h3.String()+`"]`), ".badge.deb")) != 0 {
		t.Error("a tar.zst is marked .deb")
	}

	_, v := f.manifest("web-1")
	wantCode(t, postForm(t, s, "/servers/web-1/apps/hello/deploy", url.Values{"package": {deb.String()}, "version": {string(v)}}), http.StatusSeeOther)
	if got := f.desired("web-1", "hello"); got != deb.String() {
		t.Errorf("after deploying the .deb: hello = %s", got)
	}
	var got struct {
		Packages []struct{ Name, Format string }
	}
	w := do(t, s, http.MethodGet, "/api/apps/hello/packages", nil)
	wantCode(t, w, http.StatusOK)
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Packages) == 0 || got.Packages[0].Name != deb.String() || got.Packages[0].Format != "deb" {
		t.Errorf("API packages %+v, want the .deb newest with format deb", got.Packages)
	}
}
