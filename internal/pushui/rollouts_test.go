package pushui

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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

// TestRolloutAPIGroupDefaults: what a POST /api/rollouts leaves out comes
// from the group's default strategy in the push config, what it gives
// wins, and an explicit zero stays zero.
func TestRolloutAPIGroupDefaults(t *testing.T) {
	f := groupFixture(t)
	f.conf.Rollouts = map[string]manifest.RolloutStrategy{"web": {Canary: 2, Steps: []float64{25, 100}, MinHealthyTime: manifest.Duration(time.Minute), AutoRevert: true,
		HealthyDeadline: manifest.DefaultRolloutHealthyDeadline, ProgressDeadline: manifest.DefaultRolloutProgressDeadline}}
	s := f.server()
	w := do(t, s, http.MethodPost, "/api/rollouts", strings.NewReader(`{"group": "web", "package": "`+f.h2.String()+`", "canary": 0, "min_healthy_time": "0s"}`), "Content-Type", "application/json")
	wantCode(t, w, http.StatusCreated)
	st := decode[manifest.RolloutRecord](t, w).Strategy
	if st.Canary != 0 || st.MinHealthyTime != 0 || !slices.Equal(st.Steps, []float64{25, 100}) || !st.AutoRevert {
		t.Errorf("strategy %+v: want canary 0 and min_healthy_time 0 as given, steps 25/100 and auto_revert from the group's default", st)
	}
}

// TestRolloutByID checks that a rollout is addressed by its id alone — a
// GET and a command — including one started before ids were claimed (its
// claim removed by hand), and that a GET with ?wait= and If-None-Match
// is a long poll: it answers when the record changes, with the new ETag.
func TestRolloutByID(t *testing.T) {
	f := groupFixture(t)
	s := f.server()
	w := do(t, s, http.MethodPost, "/api/rollouts", strings.NewReader(`{"group": "web", "package": "`+f.h2.String()+`", "canary": 1}`), "Content-Type", "application/json")
	wantCode(t, w, http.StatusCreated)
	id := decode[manifest.RolloutRecord](t, w).ID

	w = do(t, s, http.MethodGet, "/api/rollouts/"+id, nil)
	wantCode(t, w, http.StatusOK)
	etag := w.Header().Get("ETag")
	if got := decode[manifest.RolloutRecord](t, w); got.ID != id || etag == "" {
		t.Fatalf("GET by id: %+v, ETag %q", got, etag)
	}
	long := do(t, s, http.MethodGet, "/api/rollouts/web/hello/"+id, nil)
	if long.Body.String() != w.Body.String() || long.Header().Get("ETag") != etag {
		t.Errorf("the long form answers otherwise:\n%s\n%s", long.Body, w.Body)
	}
	wantCode(t, do(t, s, http.MethodGet, "/api/rollouts/20200101t000000-000000", nil), http.StatusNotFound)
	wantCode(t, do(t, s, http.MethodGet, "/api/rollouts/"+id+"?wait=soon", nil), http.StatusBadRequest)

	// Nothing changes: the wait ends with the record as it was.
	same := do(t, s, http.MethodGet, "/api/rollouts/"+id+"?wait=50ms", nil, "If-None-Match", etag)
	wantCode(t, same, http.StatusOK)
	if same.Header().Get("ETag") != etag {
		t.Errorf("an unchanged record came back with ETag %q, want %q", same.Header().Get("ETag"), etag)
	}

	// A pause from another client ends a waiting GET with the new record.
	waited := make(chan *httptest.ResponseRecorder)
	go func() {
		waited <- do(t, s, http.MethodGet, "/api/rollouts/"+id+"?wait=1m", nil, "If-None-Match", etag)
	}()
	wantCode(t, do(t, s, http.MethodPost, "/api/rollouts/"+id+"/pause", nil), http.StatusOK)
	w = <-waited
	wantCode(t, w, http.StatusOK)
	if got := decode[manifest.RolloutRecord](t, w); got.State != manifest.RolloutPaused || w.Header().Get("ETag") == etag {
		t.Errorf("long poll answered %s with ETag %q, want paused with a new ETag", got.State, w.Header().Get("ETag"))
	}

	// A claim edited into nonsense, or none at all: the rollout is found
	// by a listing.
	claim := filepath.Join(f.dir, "rollouts", "_ids", id+".json")
	if err := os.WriteFile(claim, []byte(`{"group": "../x"`), 0o644); err != nil {
		t.Fatal(err)
	}
	wantCode(t, do(t, s, http.MethodGet, "/api/rollouts/"+id, nil), http.StatusOK)
	if err := os.Remove(claim); err != nil {
		t.Fatal(err)
	}
	w = do(t, s, http.MethodPost, "/api/rollouts/"+id+"/resume", nil)
	wantCode(t, w, http.StatusOK)
	if got := decode[manifest.RolloutRecord](t, w); got.State != manifest.RolloutRunning {
		t.Errorf("resume by id without a claim: %s", got.State)
	}
}
