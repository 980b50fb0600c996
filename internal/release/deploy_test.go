package release

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pushpull/pushpull/manifest"
)

// TestDeploy checks -deploy: each server's manifest points the app at the
// new package, keeping the entry's env and config and every other entry;
// a manifest that does not parse is refused and left as it is; changes are
// audited and the changed servers nudged.
func TestDeploy(t *testing.T) {
	bucket := "file://" + t.TempDir()
	store := openStore(t, bucket)
	old := "hello/hello-20261101T000000Z-aaaaaaaaaaaa.tar.zst"
	const web1 = `{"revision": 7, "packages": [
		"api/api-20261121T080000Z-89abcdef0123.tar.zst",
		{"package": "` + "hello/hello-20261101T000000Z-aaaaaaaaaaaa.tar.zst" + `", "env": "hello-canary", "config": {"LOG_LEVEL": "debug"}, "on_failure": "continue"}
	]}`
	if err := store.Put(t.Context(), "servers/web-1.json", []byte(web1)); err != nil {
		t.Fatal(err)
	}
	const broken = `{"revision": 3, "packages": ["not a package"]}`
	if err := store.Put(t.Context(), "servers/broken.json", []byte(broken)); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var nudged []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		nudged = append(nudged, string(body))
		mu.Unlock()
	}))
	defer srv.Close()

	cfg := testConfig(bucket, "hello", appTree(t))
	cfg.Deploy = []string{"web-1", "broken", "web-2"}
	cfg.Nudge.URL = srv.URL + "/nudge/{server}"
	var out strings.Builder
	cfg.Out = &out
	res, err := Run(t.Context(), cfg)
	if !errors.Is(err, ErrDeploy) || !strings.Contains(err.Error(), "server broken") {
		t.Fatalf("Run = %v, want ErrDeploy naming broken", err)
	}
	if !errors.Is(err, manifest.ErrInvalidManifest) {
		t.Errorf("error does not wrap ErrInvalidManifest: %v", err)
	}
	if out.String() != res.Name.String()+"\n" || res.Name.IsZero() {
		t.Errorf("stdout %q, want the package name even when a deploy failed", out.String())
	}
	if !slices.Equal(res.Deployed, []string{"web-1", "web-2"}) {
		t.Errorf("Deployed = %v", res.Deployed)
	}

	m, _, err := store.ReadManifest(t.Context(), "web-1")
	if err != nil {
		t.Fatal(err)
	}
	if m.Revision != 8 || len(m.Packages) != 2 {
		t.Fatalf("web-1: %s", m.Marshal())
	}
	if e := m.Packages[0]; e.Package.String() != "api/api-20261121T080000Z-89abcdef0123.tar.zst" {
		t.Errorf("web-1: api entry changed: %+v", e)
	}
	if e := m.Packages[1]; e.Package != res.Name || e.Env != "hello-canary" || e.Config["LOG_LEVEL"] != "debug" || e.OnFailure != manifest.PolicyContinue {
		t.Errorf("web-1: hello entry %+v, want %s with env, config and policy kept", e, res.Name)
	}
	m, _, err = store.ReadManifest(t.Context(), "web-2")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Packages) != 1 || m.Packages[0].Package != res.Name {
		t.Errorf("web-2: %s", m.Marshal())
	}
	data, _, err := store.Read(t.Context(), "servers/broken.json")
	if err != nil || string(data) != broken {
		t.Errorf("broken manifest changed: %q, %v", data, err)
	}

	for _, server := range []string{"web-1", "web-2"} {
		recs, err := store.ListAudit(t.Context(), server, 10)
		if err != nil || len(recs) != 1 || recs[0].User != "alice" || !strings.Contains(recs[0].Action, res.Name.String()) {
			t.Errorf("audit of %s: %v, %v", server, recs, err)
			continue
		}
		if server == "web-1" && (recs[0].Before == nil || recs[0].Before.Packages[1].Package.String() != old) {
			t.Errorf("audit of web-1: before = %+v", recs[0].Before)
		}
	}
	mu.Lock()
	slices.Sort(nudged)
	if !slices.Equal(nudged, []string{"web-1", "web-2"}) {
		t.Errorf("nudged %v, want web-1 and web-2", nudged)
	}
	mu.Unlock()

	// Deploying the same package again changes nothing and nudges no one.
	before := len(nudged)
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := deploy(t.Context(), store, &cfg, &prepared{meta: res.Meta}, res.Name); !errors.Is(err, ErrDeploy) {
		t.Errorf("second deploy: %v", err)
	}
	if m, _, _ := store.ReadManifest(t.Context(), "web-1"); m.Revision != 8 {
		t.Errorf("unchanged deploy wrote web-1: revision %d", m.Revision)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(nudged) != before {
		t.Errorf("unchanged deploy nudged %v", nudged[before:])
	}
}
