package pushui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/manifest"
)

// TestInvalidRolloutShown writes records no controller wrote: the API's
// list and the record itself say "invalid" with the reason (nothing
// answers 502), the group page lists it, its page offers abort only, and
// abort clears it so that a rollout can start.
func TestInvalidRolloutShown(t *testing.T) {
	f := groupFixture(t)
	ctx := t.Context()
	step99 := `{"id": "r-step99", "strategy": {"group": "web", "env": "hello", "package": "` + f.h2.String() + `"}, "state": "running", "step": 99, "history": [], "lease": {"holder": "", "expires": "0001-01-01T00:00:00Z"}, "created": "2026-11-22T11:00:00Z", "updated": "2026-11-22T11:00:00Z"}`
	for key, data := range map[string]string{
		"rollouts/web/hello/r-step99.json": step99,
		"rollouts/_current/web/hello.json": `{"id": "r-step99"}`,
		"rollouts/web/api/r-junk.json":     "{{{",
	} {
		if err := f.store.Put(ctx, key, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	s := f.server()
	post := func(path, body string) *httptest.ResponseRecorder {
		return do(t, s, http.MethodPost, path, strings.NewReader(body), "Content-Type", "application/json")
	}

	w := do(t, s, http.MethodGet, "/api/rollouts?group=web", nil)
	wantCode(t, w, http.StatusOK)
	list := decode[struct{ Rollouts []manifest.RolloutRecord }](t, w)
	if len(list.Rollouts) != 2 {
		t.Fatalf("listed %d rollouts, want both bad records: %s", len(list.Rollouts), w.Body)
	}
	for _, r := range list.Rollouts {
		if r.State != manifest.RolloutInvalid || r.Reason == "" {
			t.Errorf("%s listed as %s (%q), want invalid with a reason", r.ID, r.State, r.Reason)
		}
	}
	w = do(t, s, http.MethodGet, "/api/rollouts/web/hello/r-step99", nil)
	wantCode(t, w, http.StatusOK)
	if r := decode[manifest.RolloutRecord](t, w); r.State != manifest.RolloutInvalid || !strings.Contains(r.Reason, "history") {
		t.Errorf("GET of step 99: %s %q, want invalid saying why", r.State, r.Reason)
	}

	doc := getPage(t, s, "/groups/web")
	if got := text(query(t, doc, "#rollouts tr[data-rollout=r-step99]")); !strings.Contains(got, "invalid") {
		t.Errorf("group page row %q, want it marked invalid", got)
	}
	doc = getPage(t, s, "/rollouts/web/hello/r-step99")
	if got := attrs(t, doc, ".commands button", "value"); len(got) != 1 || got[0] != "abort" {
		t.Errorf("commands offered for an invalid record: %q, want abort only", got)
	}

	wantCode(t, post("/api/rollouts/web/hello/r-step99/pause", ""), http.StatusConflict)
	wantCode(t, post("/api/rollouts", `{"group": "web", "package": "`+f.h2.String()+`"}`), http.StatusConflict)
	wantCode(t, post("/api/rollouts/web/hello/r-step99/abort", ""), http.StatusOK)
	wantCode(t, post("/api/rollouts", `{"group": "web", "package": "`+f.h2.String()+`"}`), http.StatusCreated)
}

// TestDeployUnderRolloutAPI checks POST /api/deploy and the group page's
// deploy form while a rollout runs: 409 naming it, then with
// abort_rollout the rollout is aborted and the deploy written.
func TestDeployUnderRolloutAPI(t *testing.T) {
	f := groupFixture(t)
	s := f.server()
	post := func(path, body string) *httptest.ResponseRecorder {
		return do(t, s, http.MethodPost, path, strings.NewReader(body), "Content-Type", "application/json")
	}
	w := post("/api/rollouts", `{"group": "web", "package": "`+f.h2.String()+`", "canary": 1, "pause_after_canary": true}`)
	wantCode(t, w, http.StatusCreated)
	rec := decode[manifest.RolloutRecord](t, w)

	w = post("/api/deploy", `{"group": "web", "package": "`+f.h1.String()+`"}`)
	wantCode(t, w, http.StatusConflict)
	if !strings.Contains(w.Body.String(), rec.ID) {
		t.Errorf("409 %s does not name rollout %s", w.Body, rec.ID)
	}
	w = post("/api/deploy", `{"servers": ["web-1"], "package": "`+f.h1.String()+`"}`)
	if !strings.Contains(w.Body.String(), rec.ID) {
		t.Errorf("deploy to a member under the rollout: %d %s, want it refused naming %s", w.Code, w.Body, rec.ID)
	}
	doc := getPage(t, s, "/groups/web")
	if len(queryAll(t, doc, "#deploy input[name=abort_rollout]")) == 0 {
		t.Errorf("the deploy form offers no abort_rollout checkbox while %s runs", rec.ID)
	}
	w = post("/api/deploy", `{"group": "web", "package": "`+f.h1.String()+`", "abort_rollout": true}`)
	wantCode(t, w, http.StatusOK)
	m, _, _ := f.store.ReadManifest(t.Context(), manifest.Group("web"))
	if e, _ := m.Lookup("hello"); e.Package != f.h1 || e.Rollout != nil {
		t.Errorf("group entry after the aborting deploy: %+v, want h1 with no rollout", e)
	}
	w = do(t, s, http.MethodGet, "/api/rollouts/web/hello/"+rec.ID, nil)
	if r := decode[manifest.RolloutRecord](t, w); r.State != manifest.RolloutAborted {
		t.Errorf("rollout after the aborting deploy: %s, want aborted", r.State)
	}
	// The console offers revert after abort; the group has moved on, so
	// it is refused, with a reason.
	if got := attrs(t, getPage(t, s, "/rollouts/web/hello/"+rec.ID), ".commands button", "value"); len(got) != 1 || got[0] != "revert" {
		t.Errorf("commands offered for an aborted rollout: %q, want revert", got)
	}
	w = post("/api/rollouts/web/hello/"+rec.ID+"/revert", "")
	wantCode(t, w, http.StatusConflict)
	if !strings.Contains(w.Body.String(), "no longer its own") {
		t.Errorf("revert after a later deploy: %s", w.Body)
	}
}

// TestRolloutsPaged lists a group's rollouts a page at a time, newest
// first, following next.
func TestRolloutsPaged(t *testing.T) {
	f := groupFixture(t)
	for i := range 5 {
		created := fixtureNow.Add(time.Duration(i) * time.Minute)
		r := &manifest.RolloutRecord{ID: "2026112" + string(rune('0'+i)) + "t000000-aaaaaa", Strategy: manifest.RolloutStrategy{Group: "web", Package: f.h2}.WithDefaults(),
			State: manifest.RolloutSucceeded, Created: created, Updated: created, History: []manifest.RolloutStep{{Percent: 100, Started: created, Outcome: manifest.StepDone}}}
		if _, err := f.store.WriteRollout(t.Context(), r, ""); err != nil {
			t.Fatal(err)
		}
	}
	s := f.server()
	var ids []string
	next := ""
	for range 3 {
		w := do(t, s, http.MethodGet, "/api/rollouts?group=web&limit=2&after="+next, nil)
		wantCode(t, w, http.StatusOK)
		page := decode[struct {
			Rollouts []manifest.RolloutRecord
			Next     string
		}](t, w)
		for _, r := range page.Rollouts {
			ids = append(ids, r.ID[:8])
		}
		if next = page.Next; next == "" {
			break
		}
	}
	if got := strings.Join(ids, " "); got != "20261124 20261123 20261122 20261121 20261120" {
		t.Errorf("pages gave %s, want newest first, each once", got)
	}
	wantCode(t, do(t, s, http.MethodGet, "/api/rollouts?limit=0", nil), http.StatusBadRequest)
}

// TestStatusFromTheFuture shows a status that claims a time ahead of the
// clock as an inconsistent status, not as serving.
func TestStatusFromTheFuture(t *testing.T) {
	f := groupFixture(t)
	f.setStatus(&manifest.Status{Server: "web-1", Time: fixtureNow, PollSeconds: 300, Groups: []manifest.GroupStatus{{Name: "web", Revision: 1}},
		Envs: []manifest.EnvStatus{{Env: "hello", App: "hello", Desired: f.h3.String(), Serving: f.h3.String(), State: manifest.StateServing, Updated: fixtureNow.Add(time.Hour)}}})
	s := f.server()
	w := do(t, s, http.MethodGet, "/api/servers/web-1/status", nil)
	if w.Code == http.StatusOK || !strings.Contains(w.Body.String(), "future") {
		t.Errorf("status from the future: %d %s, want it refused as inconsistent", w.Code, w.Body)
	}
	if got := text(query(t, getPage(t, s, "/servers/web-1"), "body")); !strings.Contains(got, "future") {
		t.Errorf("server page does not say the status is from the future")
	}
}
