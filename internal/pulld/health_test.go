package pulld

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushpull/pushpull/manifest"
)

// waitHealth waits until env's published status satisfies ok.
func waitHealth(t *testing.T, d *daemon, env string, ok func(manifest.EnvStatus) bool) manifest.EnvStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d.publish()
		es, found := d.current.Load().Lookup(env)
		if found && ok(es) {
			return es
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: status %+v never as wanted", env, es)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHealthChecks checks that pulld runs an entry's health check while
// the env serves it, reports healthy and healthy_since, reports a failing
// check with its reason, asks for a status write when health flips, and
// stops checking an env that no longer has a check.
func TestHealthChecks(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(int(status.Load())) }))
	defer srv.Close()

	d, eng := newTestDaemon(t)
	eng.root = t.TempDir()
	d.health = newHealth(t.Context(), eng.CurrentDir, func() { d.nudge(sourceHealth) })
	check := filepath.Join(eng.root, "api", "bin", "check")
	if err := os.MkdirAll(filepath.Dir(check), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(check, []byte("#!/bin/sh\ntest -f ok\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	every := manifest.MinHealthEvery
	web := manifest.Entry{Package: pkg(t, "web", 1), Health: &manifest.Health{HTTP: srv.URL + "/healthz", Every: every, Timeout: every}}
	api := manifest.Entry{Package: pkg(t, "api", 1), Health: &manifest.Health{Exec: "bin/check", Every: every, Timeout: every}}
	setManifest(t, d.store, web, api)
	if err := d.reconcile(t.Context(), t.Context()).err(); err != nil {
		t.Fatal(err)
	}
	es := waitHealth(t, d, "web", func(es manifest.EnvStatus) bool { return es.Healthy != nil && *es.Healthy })
	if es.HealthySince.IsZero() || es.HealthError != "" {
		t.Errorf("web healthy: %+v", es)
	}
	es = waitHealth(t, d, "api", func(es manifest.EnvStatus) bool { return es.Healthy != nil && !*es.Healthy })
	if !strings.Contains(es.HealthError, "bin/check") {
		t.Errorf("api unhealthy without its reason: %+v", es)
	}
	// The flip asked for a status write.
	select {
	case src := <-d.nudges:
		if src != sourceHealth {
			t.Errorf("nudge from %s, want %s", src, sourceHealth)
		}
	case <-time.After(time.Second):
		t.Error("a health flip asked for no status write")
	}
	// api's check passes once its file exists (the check runs in the build).
	if err := os.WriteFile(filepath.Join(eng.root, "api", "ok"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, d, "api", func(es manifest.EnvStatus) bool { return es.Healthy != nil && *es.Healthy })
	status.Store(http.StatusServiceUnavailable)
	es = waitHealth(t, d, "web", func(es manifest.EnvStatus) bool { return es.Healthy != nil && !*es.Healthy })
	if !strings.Contains(es.HealthError, "503") || !es.HealthySince.IsZero() {
		t.Errorf("web unhealthy: %+v", es)
	}
	// Without a check, no health is reported.
	setManifest(t, d.store, manifest.Entry{Package: web.Package}, api)
	if err := d.reconcile(t.Context(), t.Context()).err(); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, d, "web", func(es manifest.EnvStatus) bool { return es.Healthy == nil })
}
