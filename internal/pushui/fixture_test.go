package pushui

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/testing/syncbuf"
	"github.com/pushpull/pushpull/manifest"
)

// fixtureNow is the time the fixture's statuses are written relative to;
// the Server under test is told it is now.
var fixtureNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// fixture is a real file:// bucket with a small fleet in it:
//
//	hello: h1 < h2 < h3 (newest)        api: a1 < a2 (newest, dirty)
//	web-1 (group web): hello=h2 (serving it), api=a1 (FAILED, serving nothing)
//	web-2 (group web): hello=h3 (serving h2: drift), api=a2; stale heartbeat
//	db-1: hello allowed, no manifest, no status
//	old-1: not in the config; manifest hello=h1
type fixture struct {
	t     testing.TB
	dir   string
	url   string
	store *blobstore.Store
	conf  *manifest.PushConfig
	h1, h2, h3,
	a1, a2 manifest.PackageName
	nudges *recordingNudger
	logs   *syncbuf.Buffer
	ticks  atomic.Int64
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := emptyFixture(t)
	f.conf = &manifest.PushConfig{
		Servers: map[string][]string{"web-1": {"hello", "api"}, "web-2": {"hello", "api"}, "db-1": {"hello"}},
		Groups:  map[string][]string{"web": {"hello", "api"}, "db": {"hello"}},
	}
	repo := "https://github.com/example/hello.git"
	f.h1 = f.addPackage("hello", fixtureNow.Add(-72*time.Hour), "1111111111aa1111111111111111111111111111", false, repo, "first")
	f.h2 = f.addPackage("hello", fixtureNow.Add(-48*time.Hour), "2222222222bb2222222222222222222222222222", false, repo, "faster greetings")
	f.h3 = f.addPackage("hello", fixtureNow.Add(-2*time.Hour), "3333333333cc3333333333333333333333333333", false, repo, "")
	f.a1 = f.addPackage("api", fixtureNow.Add(-30*time.Hour), "aaaaaaaaaa01aaaaaaaaaaaaaaaaaaaaaaaaaaaa", false, "ssh://example.com/api", "")
	f.a2 = f.addPackage("api", fixtureNow.Add(-1*time.Hour), "aaaaaaaaaa02aaaaaaaaaaaaaaaaaaaaaaaaaaaa", true, "", "trying a fix")

	f.setManifest("web-1", f.h2, f.a1)
	f.setManifest("web-2", f.h3, f.a2)
	f.setManifest("old-1", f.h1)
	f.setStatus(&manifest.Status{
		Server: "web-1", PulldVersion: "v1.0.0", Host: manifest.HostInfo{Hostname: "web-1.internal"},
		Time: fixtureNow.Add(-time.Minute), PollSeconds: 300, ManifestRevision: 1, Groups: []manifest.GroupStatus{{Name: "web"}},
		Envs: []manifest.EnvStatus{
			{Env: "hello", App: "hello", Desired: f.h2.String(), Serving: f.h2.String(), State: manifest.StateServing, Step: "SERVING_BUILD", Updated: fixtureNow.Add(-time.Hour)},
			{Env: "api", App: "api", Desired: f.a1.String(), State: manifest.StateFailed, Step: "POST_RESTART", Error: "POST_RESTART exited with status 1", Output: "health check failed: connection refused\n", Updated: fixtureNow.Add(-5 * time.Minute)},
		},
	})
	f.setStatus(&manifest.Status{
		Server: "web-2", PulldVersion: "v1.0.0", Host: manifest.HostInfo{Hostname: "web-2.internal"},
		Time: fixtureNow.Add(-2 * time.Hour), PollSeconds: 300, ManifestRevision: 1, Groups: []manifest.GroupStatus{{Name: "web"}},
		Envs: []manifest.EnvStatus{
			{Env: "hello", App: "hello", Desired: f.h3.String(), Serving: f.h2.String(), State: manifest.StateDeploying, Step: "DOWNLOADING", Updated: fixtureNow.Add(-2 * time.Hour)},
			{Env: "api", App: "api", Desired: f.a2.String(), Serving: f.a2.String(), State: manifest.StateServing, Updated: fixtureNow.Add(-2 * time.Hour)},
		},
	})
	return f
}

// emptyFixture is a file:// bucket with nothing in it and an empty config.
func emptyFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, dir: dir, url: "file://" + dir, nudges: &recordingNudger{}, logs: &syncbuf.Buffer{}, conf: &manifest.PushConfig{Servers: map[string][]string{}}}
	s, err := blobstore.Open(context.Background(), f.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f.store = s
	return f
}

func (f *fixture) addPackage(app string, built time.Time, commit string, dirty bool, repo, note string) manifest.PackageName {
	f.t.Helper()
	return f.addPackageAs(manifest.FormatZstd, app, built, commit, dirty, repo, note)
}

// addPackageAs is addPackage in format.
func (f *fixture) addPackageAs(format manifest.Format, app string, built time.Time, commit string, dirty bool, repo, note string) manifest.PackageName {
	f.t.Helper()
	name, err := manifest.NewPackageName(app, built, commit, dirty, format)
	if err != nil {
		f.t.Fatal(err)
	}
	w, err := f.store.NewPackageWriter(context.Background(), name, manifest.PackageMeta{
		App: app, Commit: commit, Branch: "main", Repo: repo, Built: built, User: "alice", Host: "ci-7", Dirty: dirty, Note: note, Format: format,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := io.WriteString(w, "package "+name.String()); err != nil {
		f.t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		f.t.Fatal(err)
	}
	return name
}

// setManifest writes server's manifest unconditionally (behind pushui's
// back) and returns its new Version.
func (f *fixture) setManifest(server string, pkgs ...manifest.PackageName) blobstore.Version {
	f.t.Helper()
	ctx := context.Background()
	cur, v, err := f.store.ReadManifest(ctx, manifest.Server(server))
	if err != nil {
		f.t.Fatal(err)
	}
	m := &manifest.Manifest{Revision: cur.Revision}
	for _, p := range pkgs {
		m.Packages = append(m.Packages, manifest.Entry{Package: p})
	}
	u, err := f.store.UpdateManifestAt(ctx, manifest.Server(server), v, false, blobstore.Replace(m))
	if err != nil {
		f.t.Fatal(err)
	}
	return u.Version
}

func (f *fixture) setStatus(st *manifest.Status) {
	f.t.Helper()
	if err := f.store.WriteStatus(context.Background(), st); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) manifest(server string) (*manifest.Manifest, blobstore.Version) {
	f.t.Helper()
	m, v, err := f.store.ReadManifest(context.Background(), manifest.Server(server))
	if err != nil {
		f.t.Fatal(err)
	}
	return m, v
}

// desired returns the package server's manifest names for app, or "".
func (f *fixture) desired(server, app string) string {
	m, _ := f.manifest(server)
	for _, e := range m.Packages {
		if e.Package.App == app {
			return e.Package.String()
		}
	}
	return ""
}

// writeConfig stores f.conf in the bucket as the push config, as an admin
// editing config/push.json would; servers pick it up.
func (f *fixture) writeConfig() {
	f.t.Helper()
	if err := f.store.Put(context.Background(), blobstore.PushConfigKey, f.conf.Marshal()); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) audit(server string) []*manifest.AuditRecord {
	f.t.Helper()
	recs, err := f.store.ListAudit(context.Background(), manifest.Server(server), 100)
	if err != nil {
		f.t.Fatal(err)
	}
	return recs
}

// server returns a Server over the fixture's bucket, with the recording
// nudger and the fixture's clock; edit adjusts its Options.
func (f *fixture) server(edit ...func(*Options)) *Server {
	f.t.Helper()
	opts := Options{
		Store:  f.store,
		Config: f.conf,
		Nudger: f.nudges,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil)),
		Now:    f.clock(),
	}
	for _, e := range edit {
		e(&opts)
	}
	s, err := New(context.Background(), opts)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// clock returns the fixture's clock: it starts at fixtureNow and advances a
// millisecond per reading, so audit records are ordered as in life, also
// across the Servers of one test.
func (f *fixture) clock() func() time.Time {
	return func() time.Time { return fixtureNow.Add(time.Duration(f.ticks.Add(1)) * time.Millisecond) }
}

// recordingNudger records the servers it is asked to nudge.
type recordingNudger struct {
	mu      sync.Mutex
	got     []string
	members []int // of each group nudge
	err     error
}

func (n *recordingNudger) Nudge(_ context.Context, servers ...string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, servers...)
	return n.err
}

// NudgeGroup records the group as "group:NAME", and its member count.
func (n *recordingNudger) NudgeGroup(_ context.Context, group string, members int) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, "group:"+group)
	n.members = append(n.members, members)
	return n.err
}

func (n *recordingNudger) servers() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := slices.Clone(n.got)
	slices.Sort(s)
	return s
}

// do sends one request to h and returns the recorded response.
func do(t testing.TB, h http.Handler, method, target string, body io.Reader, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, target, body)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// postForm sends a same-origin form POST as a browser would.
func postForm(t testing.TB, h http.Handler, target string, form url.Values, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	hdr = append([]string{"Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "same-origin"}, hdr...)
	return do(t, h, http.MethodPost, target, strings.NewReader(form.Encode()), hdr...)
}

func wantCode(t testing.TB, w *httptest.ResponseRecorder, code int) {
	t.Helper()
	if w.Code != code {
		t.Fatalf("status %d, want %d; body:\n%s", w.Code, code, truncate(w.Body.String(), 2000))
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + fmt.Sprintf("… (%d bytes)", len(s))
	}
	return s
}
