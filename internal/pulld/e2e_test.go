package pulld_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/pulld"
	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/internal/testing/pulldtest"
	"github.com/pushpull/pushpull/internal/testing/syncbuf"
	"github.com/pushpull/pushpull/internal/testing/testserver"
	"github.com/pushpull/pushpull/manifest"
)

// wait bounds how long an end-to-end test waits for pulld to act.
const wait = 20 * time.Second

// harness is one pulld run in-process with Run, with the real pkginstall,
// a real bucket and a step log its packages' scripts write to.
type harness struct {
	t      testing.TB
	cfg    pulld.Config
	store  *blobstore.Store // the test's own handle on the bucket
	steps  *pulldtest.StepLog
	client pulldtest.Client
	cancel context.CancelFunc
	done   chan error
	logs   *syncbuf.Buffer
}

// newHarness prepares a pulld for server web-1 on bucketURL with a fresh
// root, poll 1 h (so only nudges explain prompt reconciles), and an HTTP
// listener; start runs it.
func newHarness(t testing.TB, bucketURL string) *harness {
	t.Helper()
	store, err := blobstore.Open(t.Context(), bucketURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	addr := pulldtest.FreeAddr(t)
	logs := &syncbuf.Buffer{}
	return &harness{
		t:     t,
		store: store,
		steps: pulldtest.NewStepLog(t),
		logs:  logs,
		cfg: pulld.Config{
			Bucket:      bucketURL,
			Server:      "web-1",
			Root:        t.TempDir(),
			Poll:        time.Hour,
			Listen:      addr,
			StepTimeout: 30 * time.Second,
			Grace:       5 * time.Second,
			RetryMin:    200 * time.Millisecond,
			RetryMax:    time.Second,
			Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		},
		client: pulldtest.Client{Base: "http://" + addr},
	}
}

// start runs pulld and waits until it is ready with sources established.
// It is stopped (as by SIGTERM) when the test ends.
func (h *harness) start(sources ...string) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- pulld.Run(ctx, h.cfg) }()
	h.t.Cleanup(func() {
		if err := h.stop(); err != nil {
			h.t.Errorf("pulld.Run: %v", err)
		}
		if h.t.Failed() {
			h.t.Logf("pulld log:\n%s", h.logs.String())
		}
	})
	h.client.WaitReady(h.t, sources...)
}

// stop cancels Run and returns its error. It is idempotent.
func (h *harness) stop() error {
	if h.cancel == nil {
		return nil
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		return err
	case <-time.After(wait):
		return errors.New("pulld did not stop within 20s")
	}
}

// entry is a manifest entry for p whose scripts log to h.steps.
func (h *harness) entry(p manifest.PackageName) manifest.Entry {
	return manifest.Entry{Package: p, Config: h.steps.Config()}
}

// waitEnv waits until GET /status shows env in state serving pkg.
func (h *harness) waitEnv(env string, state manifest.State, pkg string) *manifest.Status {
	h.t.Helper()
	return pulldtest.WaitStatus(h.t, wait, func() (*manifest.Status, error) { return h.client.Status(h.t), nil },
		pulldtest.EnvIs(env, state, pkg))
}

// bucketStatus reads status/web-1.json from the bucket.
func (h *harness) bucketStatus() (*manifest.Status, error) {
	return h.store.ReadStatus(h.t.Context(), "web-1")
}

// wantSteps fails unless the scripts run since the last check are want.
func (h *harness) wantSteps(what string, want ...string) {
	h.t.Helper()
	if got := h.steps.Take(h.t); !slices.Equal(got, want) {
		h.t.Fatalf("%s: steps\n got %q\nwant %q", what, got, want)
	}
}

// TestEndToEnd releases two versions of an app into a file:// bucket and
// points the manifest at v1, v2, back at v1, then removes it, checking at
// each stage the scripts run, current, and the status in the bucket and on
// GET /status. The file watch is the only nudge.
func TestEndToEnd(t *testing.T) {
	h := newHarness(t, "file://"+t.TempDir())
	v1 := deploytest.Build(t, h.store, "hello", 1, pulldtest.StepsApp("v1"))
	v2 := deploytest.Build(t, h.store, "hello", 2, pulldtest.StepsApp("v2"))
	h.start("file")
	root := h.cfg.Root

	// v1: a first deploy has no serving build, so no PRE_/POST_DOWNLOAD.
	pulldtest.SetManifest(t, h.store, "web-1", h.entry(v1))
	h.waitEnv("hello", manifest.StateServing, v1.String())
	h.wantSteps("deploy v1", pulldtest.Expect(v1, "DEPLOY", "PRE_RESTART", "RESTARTING", "POST_RESTART")...)
	if got := pulldtest.Current(t, root, "hello"); got != v1.ID() {
		t.Fatalf("current = %q, want %s", got, v1.ID())
	}
	if got := pulldtest.CurrentFile(t, root, "hello", "version.txt"); got != "v1" {
		t.Fatalf("current/version.txt = %q", got)
	}
	st := pulldtest.WaitStatus(t, wait, h.bucketStatus, pulldtest.EnvIs("hello", manifest.StateServing, v1.String()))
	es, _ := st.Lookup("hello")
	if st.Server != "web-1" || st.PulldVersion == "" || st.Host.Hostname == "" || st.ManifestRevision != 1 ||
		st.ManifestVersion == "" || st.ManifestError != "" || es.App != "hello" || es.Desired != v1.String() ||
		es.DeployID == "" || es.Error != "" {
		t.Fatalf("bucket status after v1:\n%s", st.Marshal())
	}

	// v2: the serving build's download scripts, then v2's restart scripts.
	pulldtest.SetManifest(t, h.store, "web-1", h.entry(v2))
	h.waitEnv("hello", manifest.StateServing, v2.String())
	h.wantSteps("deploy v2", pulldtest.Expect(v2, "DEPLOY", "PRE_DOWNLOAD", "POST_DOWNLOAD", "PRE_RESTART", "RESTARTING", "POST_RESTART")...)
	if got := pulldtest.Current(t, root, "hello"); got != v2.ID() {
		t.Fatalf("current = %q, want %s", got, v2.ID())
	}
	if got := pulldtest.CurrentFile(t, root, "hello", "version.txt"); got != "v2" {
		t.Fatalf("current/version.txt = %q", got)
	}
	pulldtest.WaitStatus(t, wait, h.bucketStatus, func(st *manifest.Status) bool {
		return pulldtest.EnvIs("hello", manifest.StateServing, v2.String())(st) && st.ManifestRevision == 2
	})

	// Back to v1: a rollback to a build still on disk.
	pulldtest.SetManifest(t, h.store, "web-1", h.entry(v1))
	h.waitEnv("hello", manifest.StateServing, v1.String())
	h.wantSteps("roll back to v1", pulldtest.Expect(v1, "ROLLBACK", "PRE_DOWNLOAD", "POST_DOWNLOAD", "PRE_RESTART", "RESTARTING", "POST_RESTART")...)
	if got := pulldtest.Current(t, root, "hello"); got != v1.ID() {
		t.Fatalf("current = %q, want %s", got, v1.ID())
	}

	// Removed: STOPPING runs and current goes away.
	pulldtest.SetManifest(t, h.store, "web-1")
	h.waitEnv("hello", manifest.StateStopped, "")
	h.wantSteps("remove", pulldtest.Expect(v1, "STOP", "STOPPING")...)
	if got := pulldtest.Current(t, root, "hello"); got != "" {
		t.Fatalf("current = %q after removal, want none", got)
	}
	st = pulldtest.WaitStatus(t, wait, h.bucketStatus, func(st *manifest.Status) bool {
		return pulldtest.EnvIs("hello", manifest.StateStopped, "")(st) && st.ManifestRevision == 4
	})
	// The status keeps what each action did, newest first, for the
	// history pages.
	es, _ = st.Lookup("hello")
	var got []string
	for _, o := range es.Recent {
		got = append(got, string(o.Action)+" "+o.Package+" "+string(o.State))
	}
	want := []string{
		"stop " + v1.String() + " STOPPED",
		"rollback " + v1.String() + " SERVING_BUILD",
		"deploy " + v2.String() + " SERVING_BUILD",
		"deploy " + v1.String() + " SERVING_BUILD",
	}
	if !slices.Equal(got, want) {
		t.Errorf("recent outcomes\n got %q\nwant %q", got, want)
	}

	// A clean shutdown runs no script.
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	h.wantSteps("shutdown")
}

// TestInvalidManifest checks that an invalid manifest is reported with its
// reason and touches nothing, and that fixing it resumes work.
func TestInvalidManifest(t *testing.T) {
	h := newHarness(t, "file://"+t.TempDir())
	v1 := deploytest.Build(t, h.store, "hello", 1, pulldtest.StepsApp("v1"))
	v2 := deploytest.Build(t, h.store, "hello", 2, pulldtest.StepsApp("v2"))
	h.start("file")
	pulldtest.SetManifest(t, h.store, "web-1", h.entry(v1))
	h.waitEnv("hello", manifest.StateServing, v1.String())
	h.steps.Take(t)

	key, _ := blobstore.ManifestKey(manifest.Server("web-1"))
	_, v, err := h.store.Read(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	bad := `{"revision": 9, "packages": ["` + v2.String() + `", {"package": "` + v2.String() + `", "on_failure": "explode"}]}`
	if _, err := h.store.Write(t.Context(), key, []byte(bad), v); err != nil {
		t.Fatal(err)
	}
	st := pulldtest.WaitStatus(t, wait, h.bucketStatus, func(st *manifest.Status) bool { return st.ManifestError != "" })
	if !strings.Contains(st.ManifestError, "packages[1]") || !strings.Contains(st.ManifestError, "explode") || st.ManifestRevision != 1 {
		t.Fatalf("status after an invalid manifest:\n%s", st.Marshal())
	}
	if !pulldtest.EnvIs("hello", manifest.StateServing, v1.String())(st) || pulldtest.Current(t, h.cfg.Root, "hello") != v1.ID() {
		t.Fatalf("serving build touched:\n%s", st.Marshal())
	}
	h.wantSteps("invalid manifest")

	// UpdateManifest refuses to overwrite an invalid manifest: write it raw.
	if _, err := h.store.Write(t.Context(), key, (&manifest.Manifest{Revision: 10, Packages: []manifest.Entry{h.entry(v2)}}).Marshal(), blobstore.Version(mustVersion(t, h.store, key))); err != nil {
		t.Fatal(err)
	}
	h.waitEnv("hello", manifest.StateServing, v2.String())
	if st := h.client.Status(t); st.ManifestError != "" || st.ManifestRevision != 10 {
		t.Fatalf("status after the fix:\n%s", st.Marshal())
	}
}

func mustVersion(t testing.TB, s *blobstore.Store, key string) string {
	t.Helper()
	_, v, err := s.Read(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	return string(v)
}

// TestMissingPackage checks that a manifest naming a package that is not in
// the bucket fails that env (reported, backed off), leaves the serving build
// alone, and succeeds once the package appears.
func TestMissingPackage(t *testing.T) {
	h := newHarness(t, "file://"+t.TempDir())
	v1 := deploytest.Build(t, h.store, "hello", 1, pulldtest.StepsApp("v1"))
	h.start("file")
	pulldtest.SetManifest(t, h.store, "web-1", h.entry(v1))
	h.waitEnv("hello", manifest.StateServing, v1.String())
	h.steps.Take(t)

	// v2 is named before it is released.
	v2name, err := manifest.ParsePackageName(strings.Replace(v1.String(), "T100100Z-abc000000001", "T100200Z-abc000000002", 1))
	if err != nil {
		t.Fatal(err)
	}
	pulldtest.SetManifest(t, h.store, "web-1", h.entry(v2name))
	st := pulldtest.WaitStatus(t, wait, func() (*manifest.Status, error) { return h.client.Status(t), nil }, func(st *manifest.Status) bool {
		es, ok := st.Lookup("hello")
		return ok && es.Error != "" && es.State != manifest.StateDeploying
	})
	es, _ := st.Lookup("hello")
	if es.Serving != v1.String() || es.Desired != v2name.String() || !strings.Contains(es.Error, "not found") {
		t.Fatalf("status with a missing package: %+v", es)
	}
	if pulldtest.Current(t, h.cfg.Root, "hello") != v1.ID() {
		t.Fatal("current moved off v1")
	}
	// The download failed before any script of v2 could run; v1's
	// PRE_DOWNLOAD may have run (it precedes the download).
	for _, s := range h.steps.Take(t) {
		if !strings.HasPrefix(s, "PRE_DOWNLOAD ") {
			t.Errorf("unexpected step %q", s)
		}
	}

	v2 := deploytest.Build(t, h.store, "hello", 2, pulldtest.StepsApp("v2"))
	if v2 != v2name {
		t.Fatalf("built %s, want %s", v2, v2name)
	}
	h.waitEnv("hello", manifest.StateServing, v2.String()) // the retry, after its backoff
}

// TestBucketFaults runs pulld on an S3 server behind a proxy, and checks
// that 500s and a stopped server are reported while pulld keeps running and
// the serving build stays, and that it recovers when the fault clears.
func TestBucketFaults(t *testing.T) {
	s3 := testserver.StartS3(t)
	s3.Setenv(t)
	direct := s3.Bucket(t, "")
	px := deploytest.StartProxy(t, s3.Endpoint)
	h := newHarness(t, strings.Replace(direct, s3.Endpoint, px.URL, 1))
	v1 := deploytest.Build(t, h.store, "hello", 1, pulldtest.StepsApp("v1"))
	v2 := deploytest.Build(t, h.store, "hello", 2, pulldtest.StepsApp("v2"))
	h.start("http")
	pulldtest.SetManifest(t, h.store, "web-1", h.entry(v1))
	h.client.Nudge(t)
	h.waitEnv("hello", manifest.StateServing, v1.String())
	h.steps.Take(t)

	faults := []struct {
		name  string
		start func()
		clear func()
	}{
		{"500s", func() { px.Fail(true) }, func() { px.Fail(false) }},
		{"server stopped", s3.Stop, func() { s3.Restart(t) }},
	}
	for _, f := range faults {
		f.start()
		h.client.Nudge(t)
		st := pulldtest.WaitStatus(t, wait, func() (*manifest.Status, error) { return h.client.Status(t), nil },
			func(st *manifest.Status) bool { return strings.Contains(st.ManifestError, "read manifest") })
		if !pulldtest.EnvIs("hello", manifest.StateServing, v1.String())(st) {
			t.Fatalf("%s: env changed: %s", f.name, pulldtest.Describe(st))
		}
		if hl, err := h.client.Health(); err != nil || !hl.OK {
			t.Fatalf("%s: pulld unhealthy: %+v %v", f.name, hl, err)
		}
		if pulldtest.Current(t, h.cfg.Root, "hello") != v1.ID() {
			t.Fatalf("%s: current moved", f.name)
		}
		h.wantSteps(f.name)
		// Recovery needs no nudge: bucket errors are retried with backoff.
		f.clear()
		pulldtest.WaitStatus(t, wait, h.bucketStatus, func(st *manifest.Status) bool { return st.ManifestError == "" })
	}

	pulldtest.SetManifest(t, h.store, "web-1", h.entry(v2))
	h.client.Nudge(t)
	h.waitEnv("hello", manifest.StateServing, v2.String())
}

// TestTwoPulldOneRoot checks that a second pulld on a root in use refuses
// to start, with an error that says why.
func TestTwoPulldOneRoot(t *testing.T) {
	h := newHarness(t, "file://"+t.TempDir())
	h.start("file")
	cfg := h.cfg
	cfg.Listen = ""
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	err := pulld.Run(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), h.cfg.Root) || !strings.Contains(err.Error(), "another pulld") {
		t.Fatalf("second pulld: %v, want a refusal naming the root and another pulld", err)
	}
	if hl, err := h.client.Health(); err != nil || !hl.OK {
		t.Fatalf("first pulld hurt: %+v %v", hl, err)
	}
}
