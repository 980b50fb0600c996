package pushui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/manifest"
)

// TestRolloutAPI checks POST /api/rollouts (201, then 409 for a second
// one of the same group env), GET of the list and of one record, the
// commands and their refusals, and that the start wrote the first step
// into the group's manifest.
func TestRolloutAPI(t *testing.T) {
	f := groupFixture(t)
	s := f.server()
	post := func(path, body string) *httptest.ResponseRecorder {
		return do(t, s, http.MethodPost, path, strings.NewReader(body), "Content-Type", "application/json")
	}
	w := post("/api/rollouts", `{"group": "web", "package": "`+f.h2.String()+`", "canary": 1}`)
	wantCode(t, w, http.StatusCreated)
	rec := decode[manifest.RolloutRecord](t, w)
	if rec.State != manifest.RolloutRunning || rec.Previous != f.h3 || len(rec.History) != 1 || len(rec.History[0].Canaries) != 1 {
		t.Fatalf("started %+v", rec)
	}
	m, _, _ := f.store.ReadManifest(t.Context(), manifest.Group("web"))
	if e, _ := m.Lookup("hello"); e.Package != f.h2 || e.Rollout == nil || e.Rollout.ID != rec.ID || e.Rollout.Previous != f.h3 {
		t.Errorf("group entry after the start: %+v", e)
	}
	wantCode(t, post("/api/rollouts", `{"group": "web", "package": "`+f.h1.String()+`"}`), http.StatusConflict)
	wantCode(t, post("/api/rollouts", `{"group": "web", "package": "`+f.h1.String()+`", "steps": [50]}`), http.StatusBadRequest) // steps must end at 100
	wantCode(t, post("/api/rollouts", `{"group": "nope", "package": "`+f.h1.String()+`"}`), http.StatusNotFound)
	wantCode(t, post("/api/rollouts", `{"group": "web", "package": "`+f.h1.String()+`", "bogus": 1}`), http.StatusBadRequest)

	w = do(t, s, http.MethodGet, "/api/rollouts?group=web", nil)
	wantCode(t, w, http.StatusOK)
	if !strings.Contains(w.Body.String(), rec.ID) {
		t.Errorf("list does not name %s: %s", rec.ID, w.Body)
	}
	base := "/api/rollouts/web/hello/" + rec.ID
	wantCode(t, do(t, s, http.MethodGet, base, nil), http.StatusOK)
	wantCode(t, do(t, s, http.MethodGet, "/api/rollouts/web/hello/20200101t000000-000000", nil), http.StatusNotFound)
	for _, c := range []struct {
		cmd   string
		code  int
		state manifest.RolloutState
	}{
		{"pause", http.StatusOK, manifest.RolloutPaused},
		{"pause", http.StatusConflict, ""},
		{"resume", http.StatusOK, manifest.RolloutRunning},
		{"bogus", http.StatusConflict, ""},
		{"revert", http.StatusOK, manifest.RolloutReverted},
		{"abort", http.StatusConflict, ""},
	} {
		w := post(base+"/"+c.cmd, "")
		wantCode(t, w, c.code)
		if c.state != "" {
			if got := decode[manifest.RolloutRecord](t, w); got.State != c.state {
				t.Errorf("%s: state %s, want %s", c.cmd, got.State, c.state)
			}
		}
	}
	m, _, _ = f.store.ReadManifest(t.Context(), manifest.Group("web"))
	if e, _ := m.Lookup("hello"); e.Package != f.h3 || e.Rollout != nil {
		t.Errorf("group entry after the revert: %+v, want the previous build", e)
	}
}
