package pulld

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
)

// wantCalls fails unless the engine saw exactly want since the last check.
func wantCalls(t *testing.T, eng *fakeEngine, want ...string) {
	t.Helper()
	if got := eng.takeCalls(); !slices.Equal(got, want) {
		t.Fatalf("engine calls:\n got %q\nwant %q", got, want)
	}
}

// envState returns the published status of env.
func envState(t *testing.T, d *daemon, env string) manifest.EnvStatus {
	t.Helper()
	es, ok := d.current.Load().Lookup(env)
	if !ok {
		t.Fatalf("status has no env %q: %+v", env, d.current.Load().Envs)
	}
	return es
}

// readStatus reads web-1's status from the bucket.
func readStatus(t *testing.T, s *blobstore.Store) *manifest.Status {
	t.Helper()
	st, err := s.ReadStatus(t.Context(), "web-1")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestReconcileOrderAndStops(t *testing.T) {
	d, eng := newTestDaemon(t)
	old := pkg(t, "old", 0)
	eng.install(manifest.Entry{Package: old})
	a, b, c := pkg(t, "a", 1), pkg(t, "b", 2), pkg(t, "c", 3)
	setManifest(t, d.store, entries(c, a, b)...)

	cy := d.reconcile(t.Context(), t.Context())
	if err := cy.err(); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	wantCalls(t, eng, "apply c "+c.String(), "apply a "+a.String(), "apply b "+b.String(), "stop old")
	st := d.current.Load()
	var envs []string
	for _, e := range st.Envs {
		envs = append(envs, e.Env+"="+string(e.State))
	}
	want := []string{"c=SERVING_BUILD", "a=SERVING_BUILD", "b=SERVING_BUILD", "old=STOPPED"}
	if !slices.Equal(envs, want) {
		t.Errorf("status envs = %v, want %v", envs, want)
	}
	if st.ManifestRevision != 1 || st.ManifestVersion == "" {
		t.Errorf("status manifest revision %d version %q, want 1 and a version", st.ManifestRevision, st.ManifestVersion)
	}

	// Nothing changed: nothing is done.
	if err := d.reconcile(t.Context(), t.Context()).err(); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, eng)

	// A config change of one env restarts only that env.
	e := manifest.Entry{Package: a, Config: map[string]string{"LOG_LEVEL": "debug"}}
	setManifest(t, d.store, manifest.Entry{Package: c}, e, manifest.Entry{Package: b})
	if err := d.reconcile(t.Context(), t.Context()).err(); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, eng, "apply a "+a.String())
	if eng.plans != 0 {
		t.Errorf("the loop called Plan %d times; Apply plans on its own, once", eng.plans)
	}
}

// TestStatusWrittenToBucket checks the status document written after a
// reconcile, and that an unchanged status is not rewritten before the
// heartbeat is due.
func TestStatusWrittenToBucket(t *testing.T) {
	d, _ := newTestDaemon(t)
	a := pkg(t, "a", 1)
	setManifest(t, d.store, entries(a)...)
	d.reconcile(t.Context(), t.Context())
	d.writeStatus(t.Context(), false)
	st := readStatus(t, d.store)
	if st.Server != "web-1" || st.PulldVersion == "" || st.Host.Hostname != "web-1" || !slices.Equal(st.Host.Groups, []string{"prod"}) {
		t.Errorf("status header = %+v", st)
	}
	if st.PollSeconds != int64(time.Hour/time.Second) {
		t.Errorf("poll_seconds = %d, want the heartbeat-or-poll period %d", st.PollSeconds, int64(time.Hour/time.Second))
	}
	es, ok := st.Lookup("a")
	if !ok || es.State != manifest.StateServing || es.Serving != a.String() || es.Desired != a.String() || es.DeployID != "d-a" {
		t.Errorf("status of a = %+v", es)
	}
	first := st.Time

	time.Sleep(10 * time.Millisecond)
	d.writeStatus(t.Context(), false)
	if st := readStatus(t, d.store); !st.Time.Equal(first) {
		t.Errorf("unchanged status rewritten before the heartbeat: time %v → %v", first, st.Time)
	}
	d.cfg.Heartbeat = time.Millisecond // the heartbeat is due
	d.writeStatus(t.Context(), false)
	if st := readStatus(t, d.store); !st.Time.After(first) {
		t.Errorf("heartbeat did not rewrite the status: time %v → %v", first, st.Time)
	}
}

func TestFailedEnvBacksOff(t *testing.T) {
	d, eng := newTestDaemon(t)
	a, b, b2 := pkg(t, "a", 1), pkg(t, "b", 2), pkg(t, "b", 3)
	eng.setFailing(b.String(), true)
	setManifest(t, d.store, entries(a, b)...)

	cy := d.reconcile(t.Context(), t.Context())
	if !errors.Is(cy.err(), ErrFailed) || !slices.Equal(cy.failed, []string{"b"}) {
		t.Fatalf("cycle = %+v (%v), want b failed", cy, cy.err())
	}
	wantCalls(t, eng, "apply a "+a.String(), "apply b "+b.String())
	es := envState(t, d, "b")
	if es.State != manifest.StateFailed || !strings.Contains(es.Error, "RESTARTING exited") || es.Attempts != 1 || !es.NextAttempt.After(time.Now()) || es.Output != "boom\n" {
		t.Errorf("status of b = %+v", es)
	}
	if cy.retryAt.IsZero() || time.Until(cy.retryAt) > d.cfg.RetryMin*2 {
		t.Errorf("retry at %v, want within %v", cy.retryAt, d.cfg.RetryMin*2)
	}

	// Polls before the retry is due do not touch b.
	for range 3 {
		d.reconcile(t.Context(), t.Context())
	}
	wantCalls(t, eng)

	// Once due, b is tried again; each failure doubles the wait.
	var gaps []time.Duration
	last := time.Now()
	for len(gaps) < 3 {
		time.Sleep(5 * time.Millisecond)
		d.reconcile(t.Context(), t.Context())
		if calls := eng.takeCalls(); len(calls) > 0 {
			if !slices.Equal(calls, []string{"apply b " + b.String()}) {
				t.Fatalf("calls = %q", calls)
			}
			gaps = append(gaps, time.Since(last))
			last = time.Now()
		}
	}
	// RetryMin 50ms, RetryMax 200ms, ±20% jitter: 40–60, 80–120, 160–240 ms.
	for i, lo := range []time.Duration{40, 80, 160} {
		if gaps[i] < lo*time.Millisecond {
			t.Errorf("retry %d after %v, want at least %v", i+1, gaps[i], lo*time.Millisecond)
		}
	}

	// A new entry for b is tried at once, whatever the backoff.
	setManifest(t, d.store, entries(a, b2)...)
	if err := d.reconcile(t.Context(), t.Context()).err(); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, eng, "apply b "+b2.String())
	if es := envState(t, d, "b"); es.State != manifest.StateServing || es.Error != "" {
		t.Errorf("status of b after a good push = %+v", es)
	}
}

func TestInvalidManifestTouchesNothing(t *testing.T) {
	d, eng := newTestDaemon(t)
	a, b := pkg(t, "a", 1), pkg(t, "b", 2)
	setManifest(t, d.store, entries(a, b)...)
	d.reconcile(t.Context(), t.Context())
	wantCalls(t, eng, "apply a "+a.String(), "apply b "+b.String())

	// An invalid manifest that drops b and adds a bad entry.
	key, _ := blobstore.ManifestKey(manifest.Server("web-1"))
	_, v, _ := d.store.Read(t.Context(), key)
	bad := `{"revision": 7, "packages": ["` + a.String() + `", {"package": "c/nope", "env": "C"}]}`
	if _, err := d.store.Write(t.Context(), key, []byte(bad), v); err != nil {
		t.Fatal(err)
	}
	cy := d.reconcile(t.Context(), t.Context())
	if !errors.Is(cy.err(), ErrManifest) || !errors.Is(cy.err(), manifest.ErrInvalidManifest) {
		t.Fatalf("cycle error = %v, want ErrManifest wrapping ErrInvalidManifest", cy.err())
	}
	wantCalls(t, eng) // b is not stopped
	st := d.current.Load()
	if !strings.Contains(st.ManifestError, "packages[1]") || st.ManifestRevision != 1 {
		t.Errorf("status manifest error %q revision %d, want the reason naming packages[1] and revision 1 still", st.ManifestError, st.ManifestRevision)
	}
	if es := envState(t, d, "b"); es.State != manifest.StateServing {
		t.Errorf("b = %+v, want still serving", es)
	}
	// Later polls of the same invalid version touch nothing either.
	d.reconcile(t.Context(), t.Context())
	wantCalls(t, eng)

	// Fixed: the new manifest is acted on.
	setManifestRaw(t, d.store, `{"revision": 8, "packages": ["`+a.String()+`"]}`)
	if err := d.reconcile(t.Context(), t.Context()).err(); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, eng, "stop b")
	if st := d.current.Load(); st.ManifestError != "" || st.ManifestRevision != 8 {
		t.Errorf("after the fix: manifest error %q revision %d", st.ManifestError, st.ManifestRevision)
	}
}

// setManifestRaw overwrites web-1's manifest with data, unvalidated.
func setManifestRaw(t *testing.T, s *blobstore.Store, data string) {
	t.Helper()
	key, _ := blobstore.ManifestKey(manifest.Server("web-1"))
	_, v, err := s.Read(t.Context(), key)
	if err != nil && !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := s.Write(t.Context(), key, []byte(data), v); err != nil {
		t.Fatal(err)
	}
}

func TestAbsentManifest(t *testing.T) {
	d, eng := newTestDaemon(t)
	// Nothing installed, no manifest: nothing to do, and no error.
	if err := d.reconcile(t.Context(), t.Context()).err(); err != nil {
		t.Fatalf("fresh host without a manifest: %v", err)
	}
	eng.install(manifest.Entry{Package: pkg(t, "a", 1)})
	d2 := newDaemon(d.cfg, d.store, eng, d.host)
	cy := d2.reconcile(t.Context(), t.Context())
	if !errors.Is(cy.err(), ErrManifest) || !errors.Is(cy.err(), errNoManifest) {
		t.Fatalf("installed env without a manifest: %v, want ErrManifest (no manifest)", cy.err())
	}
	wantCalls(t, eng) // a is not stopped
	if st := d2.current.Load(); !strings.Contains(st.ManifestError, "no manifest") {
		t.Errorf("manifest error = %q", st.ManifestError)
	}
	// An explicit empty manifest does stop it.
	if _, err := d.store.UpdateManifestAt(t.Context(), manifest.Server("web-1"), "", false, blobstore.Replace(&manifest.Manifest{})); err != nil {
		t.Fatal(err)
	}
	if err := d2.reconcile(t.Context(), t.Context()).err(); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, eng, "stop a")
}

func TestSelfUpdate(t *testing.T) {
	d, eng := newTestDaemon(t)
	self1, self2, a := pkg(t, "pulld", 1), pkg(t, "pulld", 2), pkg(t, "a", 3)
	eng.install(manifest.Entry{Package: self1})
	d.seedInstalled()
	setManifest(t, d.store, entries(self1, a)...)
	d.reconcile(t.Context(), t.Context())
	if d.selfUpdated {
		t.Fatal("selfUpdated without a change of pulld's package")
	}
	setManifest(t, d.store, entries(self2, a)...)
	d.reconcile(t.Context(), t.Context())
	if !d.selfUpdated {
		t.Fatal("selfUpdated not set after pulld's package changed")
	}
	// A restart of pulld's own env (config change) is not an update.
	setManifest(t, d.store, manifest.Entry{Package: self2, Config: map[string]string{"X": "1"}}, manifest.Entry{Package: a})
	d.reconcile(t.Context(), t.Context())
	if d.selfUpdated {
		t.Fatal("selfUpdated after a mere restart")
	}
}

// TestNeverStopsSelf: an env of pulld's own app that leaves the manifests
// is held, not stopped (dpkg -r of pulld would take the host out of the
// fleet), and the cycle does not fail for it; the other envs are stopped.
func TestNeverStopsSelf(t *testing.T) {
	d, eng := newTestDaemon(t)
	self1, a := pkg(t, "pulld", 1), pkg(t, "a", 2)
	setManifest(t, d.store, entries(self1, a)...)
	if err := d.reconcile(t.Context(), t.Context()).err(); err != nil {
		t.Fatal(err)
	}
	eng.calls = nil
	setManifest(t, d.store)
	if err := d.reconcile(t.Context(), t.Context()).err(); err != nil {
		t.Fatalf("a manifest without pulld's own env: %v", err)
	}
	wantCalls(t, eng, "stop a")
	if es := envState(t, d, "pulld"); !strings.Contains(es.Held, "never removes itself") {
		t.Errorf("pulld's env: held %q", es.Held)
	}
}

// TestNudgeDuringReconcile checks that a nudge arriving while a reconcile
// runs is not lost: one more reconcile follows and picks up the change.
func TestNudgeDuringReconcile(t *testing.T) {
	d, eng := newTestDaemon(t)
	eng.gate = make(chan struct{})
	eng.started = make(chan string, 10)
	a1, a2 := pkg(t, "a", 1), pkg(t, "a", 2)
	setManifest(t, d.store, entries(a1)...)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.loop(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	d.nudge("test")
	waitFor(t, eng.started, "a") // the first deploy is running, blocked
	setManifest(t, d.store, entries(a2)...)
	d.nudge("test") // arrives during the reconcile
	d.nudge("test") // and a second one merges with it
	eng.gate <- struct{}{}
	waitFor(t, eng.started, "a") // one more reconcile deploys a2
	eng.gate <- struct{}{}
	deadline := time.After(5 * time.Second)
	for {
		if es, ok := d.current.Load().Lookup("a"); ok && es.Serving == a2.String() && es.State == manifest.StateServing {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("a2 not serving: %+v", d.current.Load().Envs)
		case <-time.After(5 * time.Millisecond):
		}
	}
	wantCalls(t, eng, "apply a "+a1.String(), "apply a "+a2.String())
	select {
	case env := <-eng.started:
		t.Fatalf("a third Apply (%s) started: the nudges were not coalesced", env)
	case <-time.After(100 * time.Millisecond):
	}
}

func waitFor(t *testing.T, c chan string, want string) {
	t.Helper()
	select {
	case got := <-c:
		if got != want {
			t.Fatalf("started %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s not started within 5s", want)
	}
}

// TestShutdownLetsScriptFinish checks SIGTERM handling: the running action
// finishes (within the grace period), no new action starts, STOPPING is
// never run, and the final status is written.
func TestShutdownLetsScriptFinish(t *testing.T) {
	for _, tc := range []struct {
		name        string
		grace       time.Duration
		release     bool // let the running action finish during the grace period
		wantApplied bool
	}{
		{"finishes within grace", time.Minute, true, true},
		{"cancelled after grace", 50 * time.Millisecond, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, eng := newTestDaemon(t)
			d.cfg.Grace = tc.grace
			eng.gate = make(chan struct{})
			eng.started = make(chan string, 10)
			a, b := pkg(t, "a", 1), pkg(t, "b", 2)
			eng.install(manifest.Entry{Package: pkg(t, "old", 0)})
			setManifest(t, d.store, entries(a, b)...)

			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- d.loop(ctx) }()
			d.nudge("test")
			waitFor(t, eng.started, "a")
			cancel() // SIGTERM while a's scripts run
			if tc.release {
				time.Sleep(20 * time.Millisecond)
				eng.gate <- struct{}{}
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("loop: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("loop did not return after cancel")
			}
			var want []string
			if tc.wantApplied {
				want = []string{"apply a " + a.String()}
			}
			wantCalls(t, eng, want...) // b not started, old not stopped
			if got := len(eng.canceled); got != 1-b2i(tc.wantApplied) {
				t.Errorf("%d actions saw their context cancelled", got)
			}
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestNextWake(t *testing.T) {
	d, _ := newTestDaemon(t)
	d.cfg.Poll = 5 * time.Minute
	now := time.Now()
	for range 100 {
		if w := d.nextWake(cycle{}, now); w < 4*time.Minute || w >= 6*time.Minute {
			t.Fatalf("poll wake %v, want 4m–6m", w)
		}
	}
	d.bucketFails = 1
	if w := d.nextWake(cycle{}, now); w < 1600*time.Millisecond || w > 2400*time.Millisecond {
		t.Errorf("after one bucket error: %v, want about 2s", w)
	}
	d.bucketFails = 4
	if w := d.nextWake(cycle{}, now); w < 12800*time.Millisecond || w > 19200*time.Millisecond {
		t.Errorf("after four bucket errors: %v, want about 16s", w)
	}
	d.bucketFails = 50
	if w := d.nextWake(cycle{}, now); w > 6*time.Minute {
		t.Errorf("after many bucket errors: %v, want at most the poll period", w)
	}
	d.bucketFails = 0
	if w := d.nextWake(cycle{retryAt: now.Add(time.Second)}, now); w != time.Second {
		t.Errorf("with a retry due in 1s: %v", w)
	}
	if w := d.nextWake(cycle{retryAt: now.Add(-time.Second)}, now); w != 0 {
		t.Errorf("with a retry overdue: %v", w)
	}
}

// TestDeployingWhileActing checks that the bucket shows DEPLOYING, and the
// package on its way, while the engine runs an action, and only then: the
// engine's Started hook is how pulld learns it acts.
func TestDeployingWhileActing(t *testing.T) {
	d, eng := newTestDaemon(t)
	eng.gate = make(chan struct{})
	eng.started = make(chan string, 1)
	a1 := pkg(t, "a", 1)
	setManifest(t, d.store, entries(a1)...)
	done := make(chan cycle, 1)
	go func() { done <- d.reconcile(t.Context(), t.Context()) }()
	waitFor(t, eng.started, "a")
	es, ok := readStatus(t, d.store).Lookup("a")
	if !ok || es.State != manifest.StateDeploying || es.Desired != a1.String() || es.Action != "deploy" {
		t.Errorf("status while deploying: %+v, want DEPLOYING %s, action deploy", es, a1)
	}
	eng.gate <- struct{}{}
	if err := (<-done).err(); err != nil {
		t.Fatal(err)
	}
	after := envState(t, d, "a")
	if after.State != manifest.StateServing || after.Serving != a1.String() || after.Action != "" {
		t.Errorf("status after the deploy: %+v", after)
	}
	// Nothing to do: the engine is asked, says so, and the env's status
	// does not change.
	if err := d.reconcile(t.Context(), t.Context()).err(); err != nil {
		t.Fatal(err)
	}
	select {
	case env := <-eng.started:
		t.Fatalf("the engine acted on %s with nothing to do", env)
	default:
	}
	if es := envState(t, d, "a"); !reflect.DeepEqual(es, after) {
		t.Errorf("status after a cycle with nothing to do: %+v, want %+v", es, after)
	}
}
