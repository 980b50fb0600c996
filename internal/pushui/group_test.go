package pushui

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/client"
	"github.com/pushpull/pushpull/manifest"
)

// groupFixture is the fixture with a manifest for group web (hello at h3)
// and web-2 pinning hello at h1 in its own manifest.
func groupFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	if _, err := f.store.UpdateManifestAt(t.Context(), manifest.Group("web"), "", false, blobstore.Replace(&manifest.Manifest{Packages: []manifest.Entry{{Package: f.h3}}})); err != nil {
		t.Fatal(err)
	}
	f.setManifest("web-1", f.a1) // hello comes from the group
	f.setManifest("web-2", f.h1) // web-2 pins hello
	return f
}

// TestGroupPage checks a group's page: its entries, its members (the hosts
// whose status names it), their state per env, counts by state, and the
// member whose own manifest overrides the group.
func TestGroupPage(t *testing.T) {
	f := groupFixture(t)
	s := f.server()
	doc := getPage(t, s, "/groups/web")
	if got := attrs(t, doc, "#entries tr[data-env]", "data-env"); !slices.Equal(got, []string{"hello"}) {
		t.Errorf("entries %q", got)
	}
	if got := attrs(t, doc, "#members tr[data-server]", "data-server"); !slices.Equal(got, []string{"web-1", "web-2"}) {
		t.Errorf("members %q, want the hosts whose status names web", got)
	}
	if got := text(query(t, doc, "#members tr[data-server=web-2] td[data-env=hello]")); !strings.Contains(got, "pinned") {
		t.Errorf("web-2 hello %q: its own manifest pins hello", got)
	}
	if got := text(query(t, doc, "#members tr[data-server=web-1] td[data-env=hello]")); strings.Contains(got, "pinned") || !strings.Contains(got, "SERVING_BUILD") {
		t.Errorf("web-1 hello %q", got)
	}
	if got := text(query(t, doc, ".counts")); !strings.Contains(got, "DEPLOYING 1") || !strings.Contains(got, "SERVING_BUILD 1") {
		t.Errorf("counts %q", got)
	}
	// A host that joins appears with no configuration, once it reports.
	f.setStatus(&manifest.Status{Server: "web-9", Time: fixtureNow, PollSeconds: 300, Groups: []manifest.GroupStatus{{Name: "web", Revision: 1}}})
	s = f.server()
	if got := attrs(t, getPage(t, s, "/groups/web"), "#members tr[data-server]", "data-server"); !slices.Contains(got, "web-9") {
		t.Errorf("members %q: the new host is missing", got)
	}
	wantCode(t, do(t, s, http.MethodGet, "/groups/nope", nil), http.StatusNotFound)
	wantCode(t, do(t, s, http.MethodGet, "/groups/Bad", nil), http.StatusBadRequest)
	// The server's page says where each entry comes from.
	sdoc := getPage(t, s, "/servers/web-1")
	if got := text(query(t, sdoc, "tr[data-app=hello] td.app")); !strings.Contains(got, "group web") {
		t.Errorf("web-1 hello row %q does not name the group", got)
	}
}

// TestGroupForms checks the group page's writes: deploy, restart, config,
// remove and promote, each one write of a group manifest.
func TestGroupForms(t *testing.T) {
	f := groupFixture(t)
	s := f.server()
	version := func(g string) string {
		_, v, err := f.store.ReadManifest(t.Context(), manifest.Group(g))
		if err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	entry := func(g, env string) manifest.Entry {
		m, _, _ := f.store.ReadManifest(t.Context(), manifest.Group(g))
		e, _ := m.Lookup(env)
		return e
	}
	w := postForm(t, s, "/groups/web/apps/api/deploy", url.Values{"package": {f.a2.String()}, "version": {version("web")}})
	wantCode(t, w, http.StatusSeeOther)
	if entry("web", "api").Package != f.a2 {
		t.Error("deploy did not write api")
	}
	if got := text(query(t, getPage(t, s, w.Header().Get("Location")), ".alert.flash")); !strings.Contains(got, "its 2 members will deploy api "+f.a2.Commit+" (dirty) “trying a fix”") {
		t.Errorf("flash %q", got)
	}
	// A stale version writes nothing.
	wantCode(t, postForm(t, s, "/groups/web/apps/api/deploy", url.Values{"package": {f.a1.String()}, "version": {`"stale"`}}), http.StatusPreconditionFailed)
	if entry("web", "api").Package != f.a2 {
		t.Error("a stale form was written")
	}
	wantCode(t, postForm(t, s, "/groups/web/envs/api/restart", url.Values{"version": {version("web")}}), http.StatusSeeOther)
	if entry("web", "api").Restart == "" {
		t.Error("restart wrote no token")
	}
	wantCode(t, postForm(t, s, "/groups/web/envs/api/config", url.Values{"config": {"LOG_LEVEL=debug"}, "version": {version("web")}}), http.StatusSeeOther)
	if entry("web", "api").Config["LOG_LEVEL"] != "debug" {
		t.Error("config not written")
	}
	// Promote: web's hello entry is copied to db, which may carry hello.
	wantCode(t, postForm(t, s, "/groups/web/envs/hello/promote", url.Values{"to": {"db"}}), http.StatusSeeOther)
	if got := entry("db", "hello"); got.Package != f.h3 {
		t.Errorf("db hello = %+v, want %s", got, f.h3)
	}
	// db may not carry api.
	wantCode(t, postForm(t, s, "/groups/web/envs/api/promote", url.Values{"to": {"db"}}), http.StatusBadRequest)
	wantCode(t, postForm(t, s, "/groups/web/apps/api/remove", url.Values{"version": {version("web")}}), http.StatusBadRequest) // no confirm
	wantCode(t, postForm(t, s, "/groups/web/apps/api/remove", url.Values{"version": {version("web")}, "confirm": {"yes"}}), http.StatusSeeOther)
	if _, ok := func() (manifest.Entry, bool) {
		m, _, _ := f.store.ReadManifest(t.Context(), manifest.Group("web"))
		return m.Lookup("api")
	}(); ok {
		t.Error("api is still in the group")
	}
	recs, err := f.store.ListAudit(t.Context(), manifest.Group("web"), 20)
	if err != nil || len(recs) != 4 {
		t.Errorf("%d audit records for web (%v), want 4", len(recs), err)
	}
	if got := f.nudges.servers(); len(got) != 5 || slices.ContainsFunc(got, func(s string) bool { return !strings.HasPrefix(s, "group:") }) {
		t.Errorf("nudged %q, want one group nudge per write", got)
	}
}

// TestGroupAPI checks GET and PUT /api/groups/{group} (ETag, If-Match, 412
// and 428 as for servers) and GET /api/groups.
func TestGroupAPI(t *testing.T) {
	f := groupFixture(t)
	s := f.server()
	w := do(t, s, http.MethodGet, "/api/groups/web", nil)
	wantCode(t, w, http.StatusOK)
	etag := w.Header().Get("ETag")
	if etag == "" || !strings.Contains(w.Body.String(), f.h3.String()) {
		t.Fatalf("GET: ETag %q, body %s", etag, w.Body)
	}
	body := `{"packages": ["` + f.h2.String() + `"]}`
	wantCode(t, do(t, s, http.MethodPut, "/api/groups/web", strings.NewReader(body)), http.StatusPreconditionRequired)
	wantCode(t, do(t, s, http.MethodPut, "/api/groups/web", strings.NewReader(body), "If-Match", `"0000"`), http.StatusPreconditionFailed)
	w = do(t, s, http.MethodPut, "/api/groups/web", strings.NewReader(body), "If-Match", etag)
	wantCode(t, w, http.StatusOK)
	if w.Header().Get("ETag") == etag {
		t.Error("ETag unchanged after a write")
	}
	// The app must be allowed on the group.
	wantCode(t, do(t, s, http.MethodPut, "/api/groups/db", strings.NewReader(`{"packages": ["`+f.a1.String()+`"]}`), "If-None-Match", "*"), http.StatusBadRequest)
	// A group the config names but without a manifest is created with If-None-Match.
	wantCode(t, do(t, s, http.MethodPut, "/api/groups/db", strings.NewReader(`{"packages": []}`), "If-None-Match", "*"), http.StatusOK)
	if _, v, _ := f.store.ReadManifest(t.Context(), manifest.Group("db")); v == "" {
		t.Error("groups/db.json was not created")
	}
	wantCode(t, do(t, s, http.MethodGet, "/api/groups/nope", nil), http.StatusNotFound)
	w = do(t, s, http.MethodGet, "/api/groups/web/history", nil)
	wantCode(t, w, http.StatusOK)
	if !strings.Contains(w.Body.String(), `"group":"web"`) || !strings.Contains(w.Body.String(), "put manifest") {
		t.Errorf("history %s", w.Body)
	}

	type groups struct {
		Groups []client.GroupSummary `json:"groups"`
	}
	w = do(t, f.server(), http.MethodGet, "/api/groups", nil)
	wantCode(t, w, http.StatusOK)
	var web *client.GroupSummary
	out := decode[groups](t, w)
	for i := range out.Groups {
		if out.Groups[i].Name == "web" {
			web = &out.Groups[i]
		}
	}
	if web == nil || web.Members != 2 || !web.Exists || web.Override != 1 || web.States["SERVING_BUILD"]+web.States["DEPLOYING"] != 2 {
		t.Errorf("GET /api/groups: web = %+v (all %+v)", web, out.Groups)
	}
}

// TestPinKeepsGroupConfig checks that pinning one host's version of an app
// its group gives it (Teletraan's hotfix) starts from the group's entry:
// only the version changes.
func TestPinKeepsGroupConfig(t *testing.T) {
	f := groupFixture(t)
	e := manifest.Entry{Package: f.h3, Config: map[string]string{"MESSAGE": "from the group"}, OnFailure: manifest.PolicyContinue}
	if _, err := f.store.UpdateManifest(t.Context(), manifest.Group("web"), func(m *manifest.Manifest, _ bool) error {
		m.Packages = []manifest.Entry{e}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s := f.server()
	w := do(t, s, http.MethodPost, "/api/deploy", strings.NewReader(`{"package": "`+f.h1.String()+`", "servers": ["web-1"]}`), "Content-Type", "application/json")
	wantCode(t, w, http.StatusOK)
	m, _ := f.manifest("web-1")
	got, ok := m.Lookup("hello")
	if !ok || got.Package != f.h1 || got.Config["MESSAGE"] != "from the group" || got.Policy() != manifest.PolicyContinue {
		t.Errorf("pin %+v, want h1 with the group's config and policy", got)
	}
}

// TestHeldShown checks that an env pulld holds is shown as held, not as
// an app the push config refuses, and counted on the group.
func TestHeldShown(t *testing.T) {
	f := groupFixture(t)
	why := "groups web, other all name env hello and the server manifest does not: left as it is"
	f.setStatus(&manifest.Status{Server: "web-3", Time: fixtureNow, PollSeconds: 300, Groups: []manifest.GroupStatus{{Name: "web", Revision: 1}, {Name: "other"}},
		Envs: []manifest.EnvStatus{{Env: "hello", App: "hello", Serving: f.h3.String(), State: manifest.StateServing, Held: why}}})
	s := f.server()
	row := text(query(t, getPage(t, s, "/servers/web-3"), "tr[data-app=hello]"))
	if !strings.Contains(row, "held") || strings.Contains(row, "not allowed") {
		t.Errorf("web-3 hello row %q, want held and not 'not allowed'", row)
	}
	if got := text(query(t, getPage(t, s, "/groups/web"), "#members tr[data-server=web-3] td[data-env=hello]")); !strings.Contains(got, "held") || strings.Contains(got, "= desired") {
		t.Errorf("group page web-3 hello %q, want held, not done", got)
	}
	w := do(t, s, http.MethodGet, "/api/groups", nil)
	if !strings.Contains(w.Body.String(), `"held":1`) {
		t.Errorf("GET /api/groups does not count the held env: %s", w.Body)
	}
}
