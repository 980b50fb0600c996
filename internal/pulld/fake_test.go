package pulld

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkginstall"
)

// fakeEngine stands in for pkginstall in unit tests of the loop's own
// logic (ordering, backoff, coalescing); the end-to-end tests use the real
// engine. It records every Apply and Stop.
type fakeEngine struct {
	mu       sync.Mutex
	serving  map[string]manifest.Entry     // env → entry in service
	order    []string                      // installed envs, in install order
	failing  map[string]bool               // package names whose Apply fails
	calls    []string                      // "apply ENV PACKAGE" and "stop ENV"
	gate     chan struct{}                 // when set, Apply waits for a value (or ctx) first
	started  chan string                   // when set, receives the env of every Apply as it starts
	canceled []string                      // envs whose Apply saw its context end
	plans    int                           // calls of Plan from outside
	root     string                        // CurrentDir's base: a test's directory of "builds", one per env
	hook     func(string, manifest.Action) // pkginstall's Config.Started: the daemon's started
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{serving: map[string]manifest.Entry{}, failing: map[string]bool{}}
}

func (f *fakeEngine) Plan(e manifest.Entry) (manifest.Action, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plans++
	return f.plan(e)
}

// plan is Plan without counting the call; f.mu is held.
func (f *fakeEngine) plan(e manifest.Entry) (manifest.Action, error) {
	cur, ok := f.serving[e.EnvName()]
	switch {
	case !ok:
		return manifest.ActionDeploy, nil
	case cur.Package != e.Package:
		return manifest.ActionDeploy, nil
	case entryKey(cur) != entryKey(e):
		return manifest.ActionRestart, nil
	}
	return manifest.ActionNone, nil
}

func (f *fakeEngine) Apply(ctx context.Context, e manifest.Entry) pkginstall.Result {
	env := e.EnvName()
	f.mu.Lock()
	act, _ := f.plan(e)
	f.mu.Unlock()
	if act == manifest.ActionNone {
		return pkginstall.Result{Env: env, Action: act, State: manifest.StateServing, Step: manifest.StepServing, Serving: e.Package}
	}
	if f.hook != nil {
		f.hook(env, act)
	}
	if f.started != nil {
		f.started <- env
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			f.mu.Lock()
			f.canceled = append(f.canceled, env)
			f.mu.Unlock()
			return pkginstall.Result{Action: act, State: manifest.StateFailed, Step: "RESTARTING", Err: fmt.Errorf("canceled: %w", ctx.Err())}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "apply "+env+" "+e.Package.String())
	old := f.serving[env]
	if f.failing[e.Package.String()] {
		return pkginstall.Result{Action: act, State: manifest.StateFailed, Step: "RESTARTING", Serving: old.Package,
			Err: errors.New("RESTARTING exited with status 1"), Output: "boom\n", DeployID: "d-fail"}
	}
	if _, ok := f.serving[env]; !ok {
		f.order = append(f.order, env)
	}
	f.serving[env] = e
	return pkginstall.Result{Action: act, State: manifest.StateServing, Step: "POST_RESTART", Serving: e.Package, DeployID: "d-" + env, Downloaded: 100}
}

func (f *fakeEngine) Stop(ctx context.Context, env string) pkginstall.Result {
	if f.hook != nil {
		f.hook(env, manifest.ActionStop)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "stop "+env)
	delete(f.serving, env)
	f.order = slices.DeleteFunc(f.order, func(s string) bool { return s == env })
	return pkginstall.Result{Action: manifest.ActionStop, State: manifest.StateStopped, Step: "STOPPING"}
}

func (f *fakeEngine) Installed() ([]pkginstall.Installed, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []pkginstall.Installed
	for _, env := range f.order {
		out = append(out, pkginstall.Installed{Env: env, Package: f.serving[env].Package, State: manifest.StateServing})
	}
	return out, nil
}

func (f *fakeEngine) Close() error { return nil }

func (f *fakeEngine) Stage(_ context.Context, env string, p manifest.PackageName) pkginstall.Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "stage "+env+" "+p.String())
	return pkginstall.Result{Env: env, Action: manifest.ActionStage, What: pkginstall.Staged}
}

func (f *fakeEngine) CurrentDir(env string) string { return filepath.Join(f.root, env) }

// install marks e as installed without a call being recorded.
func (f *fakeEngine) install(e manifest.Entry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.serving[e.EnvName()] = e
	f.order = append(f.order, e.EnvName())
}

// takeCalls returns the calls recorded since the last takeCalls.
func (f *fakeEngine) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *fakeEngine) setFailing(pkg string, fail bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing[pkg] = fail
}

// pkg returns a package name of app whose build time is minute past noon.
func pkg(t testing.TB, app string, minute int) manifest.PackageName {
	t.Helper()
	p, err := manifest.NewPackageName(app, time.Date(2026, 11, 22, 12, minute, 0, 0, time.UTC), "0123456789abcdef", false, manifest.FormatZstd)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// memStore opens a fresh mem:// bucket.
func memStore(t testing.TB) *blobstore.Store {
	t.Helper()
	s, err := blobstore.Open(t.Context(), "mem://")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// testConfig returns a valid Config for server web-1 on a mem:// bucket.
func testConfig(t testing.TB) Config {
	cfg := Config{
		Bucket:   "mem://",
		Server:   "web-1",
		Root:     t.TempDir(),
		Poll:     time.Hour,
		RetryMin: 50 * time.Millisecond,
		RetryMax: 200 * time.Millisecond,
		Logger:   testLogger(t),
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// newTestDaemon returns a daemon on a fresh mem:// bucket and fake engine.
func newTestDaemon(t testing.TB) (*daemon, *fakeEngine) {
	t.Helper()
	eng := newFakeEngine()
	d := newDaemon(testConfig(t), memStore(t), eng, manifest.HostInfo{Hostname: "web-1", Groups: []string{"prod"}})
	eng.hook = d.started
	return d, eng
}

// setManifest writes the manifest of web-1 with entries.
func setManifest(t testing.TB, s *blobstore.Store, entries ...manifest.Entry) {
	t.Helper()
	if _, err := s.UpdateManifest(t.Context(), manifest.Server("web-1"), func(m *manifest.Manifest, _ bool) error {
		m.Packages = entries
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

func entries(ps ...manifest.PackageName) []manifest.Entry {
	var out []manifest.Entry
	for _, p := range ps {
		out = append(out, manifest.Entry{Package: p})
	}
	return out
}
