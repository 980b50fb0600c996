package pulld

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/manifest"
)

func TestHTTP(t *testing.T) {
	d, _ := newGroupDaemon(t, "web")
	a := pkg(t, "a", 1)
	setManifest(t, d.store, entries(a)...)
	d.reconcile(t.Context(), t.Context())
	d.setSource("gce", false)
	d.setSource(sourceHTTP, true)
	srv := httptest.NewServer(d.handler())
	t.Cleanup(srv.Close)

	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	t.Run("status", func(t *testing.T) {
		code, body := do("GET", "/status", "")
		st, err := manifest.ParseStatus([]byte(body))
		if code != 200 || err != nil {
			t.Fatalf("GET /status: %d %v\n%s", code, err, body)
		}
		if es, ok := st.Lookup("a"); !ok || es.State != manifest.StateServing || st.Server != "web-1" || st.ManifestRevision != 1 {
			t.Errorf("status = %+v", st)
		}
	})
	t.Run("healthz", func(t *testing.T) {
		code, body := do("GET", "/healthz", "")
		var h Health
		if err := json.Unmarshal([]byte(body), &h); err != nil || code != 200 || !h.OK || h.Sources["gce"] || !h.Sources[sourceHTTP] {
			t.Errorf("GET /healthz: %d %s", code, body)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		code, body := do("GET", "/metrics", "")
		for _, want := range []string{
			`pulld_reconciles_total{result="ok"} 1`,
			`pulld_actions_total{action="deploy",result="ok"} 1`,
			`pulld_action_duration_seconds_count{action="deploy"} 1`,
			`pulld_downloaded_bytes_total 100`,
			`pulld_manifest_revision 1`,
			`pulld_env_state{env="a",state="SERVING_BUILD"} 1`,
			`pulld_env_state{env="a",state="FAILED"} 0`,
			`pulld_build_info{version=`,
			`pulld_last_success_timestamp_seconds `,
			`go_goroutines `,
		} {
			if code != 200 || !strings.Contains(body, want) {
				t.Errorf("GET /metrics (%d) lacks %q", code, want)
			}
		}
	})
	t.Run("nudge", func(t *testing.T) {
		for _, tc := range []struct {
			method, body string
			code         int
			nudged       bool
		}{
			{"POST", "", http.StatusAccepted, true},
			{"POST", "web-1\n", http.StatusAccepted, true},
			{"POST", "web-2", http.StatusMisdirectedRequest, false},
			{"POST", "group-web", http.StatusAccepted, true}, // a relay's group nudge
			{"POST", "group-api", http.StatusMisdirectedRequest, false},
			{"POST", strings.Repeat("x", 2000), http.StatusRequestEntityTooLarge, false},
			{"GET", "", http.StatusMethodNotAllowed, false},
		} {
			code, body := do(tc.method, "/nudge", tc.body)
			if code != tc.code {
				t.Errorf("%s /nudge %.10q: %d %s, want %d", tc.method, tc.body, code, body, tc.code)
			}
			select {
			case <-d.nudges:
				if !tc.nudged {
					t.Errorf("%s /nudge %.10q nudged", tc.method, tc.body)
				}
			default:
				if tc.nudged {
					t.Errorf("%s /nudge %.10q did not nudge", tc.method, tc.body)
				}
			}
		}
	})
}

func TestHealthzStalled(t *testing.T) {
	d, _ := newTestDaemon(t)
	d.live.set(true, false)
	d.live.since = d.live.since.Add(-2 * stallLimit)
	rec := httptest.NewRecorder()
	d.handler().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("stalled loop: /healthz %d, want 503", rec.Code)
	}
	d.live.set(true, true) // inside pkginstall: its own timeouts apply
	rec = httptest.NewRecorder()
	d.handler().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("loop in a long script: /healthz %d, want 200", rec.Code)
	}
}
