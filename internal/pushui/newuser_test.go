package pushui

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/internal/pushui/api"
	"github.com/pushpull/pushpull/internal/pushui/auth"
	"github.com/pushpull/pushpull/manifest"
	"golang.org/x/crypto/bcrypt"
)

// TestGroupFormsPreselectNoNewBuild checks that the group page never
// preselects a build the group does not run: the deploy form preselects
// the group's current build, the rollout form nothing (it must be chosen).
func TestGroupFormsPreselectNoNewBuild(t *testing.T) {
	f := groupFixture(t) // web runs h3; h1, h2 and h3 exist
	doc := getPage(t, f.server(), "/groups/web")
	// One form per app: hello's preselects h3, the others (not in the
	// group) nothing.
	got := attrs(t, doc, "#deploy select[name=package] option[selected]", "value")
	if !slices.Contains(got, f.h3.String()) || slices.ContainsFunc(got, func(v string) bool { return v != "" && v != f.h3.String() }) {
		t.Errorf("deploy forms preselect %q, want the group's current build %s and nothing else", got, f.h3)
	}
	if got := attrs(t, doc, "form.rollout-start select[name=package] option[selected]", "value"); len(got) != 1 || got[0] != "" {
		t.Errorf("rollout form preselects %q, want nothing", got)
	}
	if got := attrs(t, doc, "form.rollout-start select[name=package]", "required"); len(got) != 1 {
		t.Errorf("rollout form's build is not required: %q", got)
	}
}

// TestAPILeavesOutWhatIsNotSet checks that API documents carry no internal
// empty fields: a default strategy in the push config has no group or
// package.
func TestAPILeavesOutWhatIsNotSet(t *testing.T) {
	f := groupFixture(t)
	f.conf.Rollouts = map[string]manifest.RolloutStrategy{"web": manifest.DefaultRolloutStrategy()}
	f.writeConfig()
	w := do(t, f.server(), http.MethodGet, "/api/config", nil)
	wantCode(t, w, http.StatusOK)
	for _, empty := range []string{`"group": ""`, `"package": ""`, `"group":""`, `"package":""`, `"expires"`} {
		if strings.Contains(w.Body.String(), empty) {
			t.Errorf("GET /api/config has %s:\n%s", empty, w.Body)
		}
	}
}

// TestAPIReferenceAsJSON asks GET /api for JSON: the route table, the same
// one the page shows and the mux serves; a browser still gets the page.
func TestAPIReferenceAsJSON(t *testing.T) {
	f := groupFixture(t)
	s := f.server()
	w := do(t, s, http.MethodGet, "/api", nil, "Accept", "application/json")
	wantCode(t, w, http.StatusOK)
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want JSON", ct)
	}
	doc := decode[struct{ Routes []api.Route }](t, w)
	if len(doc.Routes) != len(s.api.Routes()) {
		t.Fatalf("%d routes, want %d", len(doc.Routes), len(s.api.Routes()))
	}
	for _, r := range doc.Routes {
		if r.Method == "" || r.Path == "" || r.What == "" || !strings.Contains(r.Example, "http://") {
			t.Errorf("route %+v: want method, path, what and an example with pushui's address", r)
		}
	}
	w = do(t, s, http.MethodGet, "/api", nil, "Accept", "text/html,application/xhtml+xml,application/json;q=0.9")
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("a browser's Accept got %q, want the page", ct)
	}
}

// TestRefusedSignInsLogged checks that a wrong password and an unknown
// user get the same 401, are logged once per user and peer (not on every
// request a browser repeats), and are counted in /metrics.
func TestRefusedSignInsLogged(t *testing.T) {
	f := groupFixture(t)
	hash, _ := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	ht, err := auth.ParseHtpasswd([]byte("alice:" + string(hash) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	var logs bytes.Buffer
	s := f.server(func(o *Options) {
		o.Htpasswd = ht
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	for _, cred := range [][2]string{{"alice", "wrong"}, {"alice", "wrong"}, {"alice", "again"}, {"mallory", "x"}} {
		w := do(t, s, http.MethodGet, "/api/servers", nil, "Authorization", basic(cred[0], cred[1]))
		wantCode(t, w, http.StatusUnauthorized)
	}
	wantCode(t, do(t, s, http.MethodGet, "/api/servers", nil), http.StatusUnauthorized) // no credentials: not a refusal
	lines := strings.Count(logs.String(), "sign-in refused")
	if lines != 2 || !strings.Contains(logs.String(), "user=alice") || !strings.Contains(logs.String(), "user=mallory") || !strings.Contains(logs.String(), "peer=") {
		t.Errorf("%d lines for refused sign-ins (want one per user and peer, with both):\n%s", lines, logs.String())
	}
	w := do(t, s, http.MethodGet, "/metrics", nil)
	wantCode(t, w, http.StatusOK)
	if !strings.Contains(w.Body.String(), "pushui_sign_ins_refused_total 4") {
		t.Errorf("/metrics does not count 4 refused sign-ins:\n%s", w.Body)
	}
}
