package pushui

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pushpull/pushpull/internal/nudge"
	"github.com/pushpull/pushpull/manifest"
)

// chromiumPath finds the Chromium the browser tests drive. It fails the
// test, never skips it, when there is none: CI installs Debian's chromium.
func chromiumPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("browser tests need Chromium: install Debian's chromium package (apt-get install chromium) or set CHROMIUM to its path")
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile and returns a
// chromedp context for one tab; everything is torn down with the test.
func newBrowser(t testing.TB) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// The first Do starts the browser; its context must live as long as the
	// browser, so it gets no timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// browserTimeout bounds each group of browser steps.
const browserTimeout = 30 * time.Second

// act runs browser steps with a deadline.
func act(t testing.TB, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, browserTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// get runs one browser action with a deadline and returns its value.
func get[T any](t testing.TB, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, browserTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}

// artifactDir is where screenshots go: $PUSHPULL_ARTIFACTS (CI keeps it),
// or the test's temporary directory.
func artifactDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("PUSHPULL_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func screenshot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	png := get(t, ctx, chromedp.FullScreenshot(100))
	path := filepath.Join(artifactDir(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	return path
}

// nudgeSink stands in for pulld's POST /nudge endpoint; the real
// nudge.Nudger posts to it.
type nudgeSink struct {
	mu  sync.Mutex
	got []string
	ch  chan string
}

func newNudgeSink(t testing.TB) (*nudgeSink, *nudge.Nudger) {
	t.Helper()
	sink := &nudgeSink{ch: make(chan string, 16)}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		server := strings.TrimPrefix(r.URL.Path, "/nudge/")
		if r.Method != http.MethodPost || server != strings.TrimSpace(string(body)) {
			http.Error(w, "bad nudge", http.StatusBadRequest)
			return
		}
		sink.mu.Lock()
		sink.got = append(sink.got, server)
		sink.mu.Unlock()
		sink.ch <- server
	}))
	t.Cleanup(hs.Close)
	n, err := nudge.New(t.Context(), nudge.Config{URL: hs.URL + "/nudge/{server}"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close(context.Background()) })
	return sink, n
}

func (s *nudgeSink) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

// TestBrowser drives the real UI in headless Chromium over a real file://
// bucket and a real HTTP nudger: filter the main page, pick a version, see
// the bucket change and the nudge arrive; then lose a race against another
// editor and see the 412 page.
func TestBrowser(t *testing.T) {
	f := newFixture(t)
	sink, nudger := newNudgeSink(t)
	srv := f.server(func(o *Options) { o.Nudger = nudger })
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	ctx := newBrowser(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	visibleServers := func() string {
		v := get(t, ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("section.server")).filter(s => !s.hidden).map(s => s.dataset.server)`))
		return strings.Join(v, ",")
	}

	act(t, ctx,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(hs.URL+"/"),
		chromedp.WaitVisible(css(`section.server[data-server="web-1"]`)),
	)
	if n := get(t, ctx, chromedp.Text(css("#count"))); n != "4" {
		t.Fatalf("main page shows %s servers, want 4", n)
	}
	screenshot(t, ctx, "pushui-main.png")

	t.Run("filter", func(t *testing.T) {
		act(t, ctx,
			chromedp.SendKeys(css(`#filter input[name=server]`), "web"),
			chromedp.WaitNotVisible(css(`section.server[data-server="db-1"]`)),
		)
		if got := visibleServers(); got != "web-1,web-2" {
			t.Errorf("visible after filtering 'web': %s, want web-1,web-2", got)
		}
		if href := get(t, ctx, chromedp.Location()); !strings.HasSuffix(href, "/?server=web") {
			t.Errorf("URL after filtering = %s, want it to keep ?server=web", href)
		}
		// The filter survives a reload: the server renders it too.
		act(t, ctx,
			chromedp.Reload(),
			chromedp.WaitVisible(css(`section.server[data-server="web-2"]`)),
		)
		if got := get(t, ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("section.server")).map(s => s.dataset.server)`)); strings.Join(got, ",") != "web-1,web-2" {
			t.Errorf("after reload with ?server=web the page renders %v", got)
		}
	})

	t.Run("pick a version", func(t *testing.T) {
		want := f.h3.String()
		act(t, ctx,
			chromedp.Click(css(`section.server[data-server="web-1"] tr[data-app="hello"] td.app a`)),
			chromedp.WaitVisible(css(`table.packages`)),
			chromedp.Click(css(`tr[data-package="`+want+`"] button.deploy`)),
			chromedp.WaitVisible(css(`.alert.flash`)),
		)
		if flash := get(t, ctx, chromedp.Text(css(`.alert.flash`))); !strings.Contains(flash, "web-1 will deploy") {
			t.Errorf("flash after deploying: %q", flash)
		}
		if got := f.desired("web-1", "hello"); got != want {
			t.Errorf("bucket manifest of web-1 names %s for hello, want %s", got, want)
		}
		select {
		case got := <-sink.ch:
			if got != "web-1" {
				t.Errorf("nudged %s, want web-1", got)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no nudge reached the sink")
		}
		if cls := get(t, ctx, chromedp.AttributeValue(css(`tr[data-package="`+want+`"]`), "class")); cls.Value != "desired" {
			t.Errorf("after the deploy the chosen row's class is %q, want desired", cls.Value)
		}
		screenshot(t, ctx, "pushui-picked.png")
	})

	t.Run("conflict", func(t *testing.T) {
		act(t, ctx,
			chromedp.Navigate(hs.URL+"/servers/web-2/apps/hello"),
			chromedp.WaitVisible(css(`table.packages`)),
		)
		// Someone else points web-2 at h1 while the page is open.
		behind := f.setManifest("web-2", f.h1, f.a2)
		nudgesBefore := len(sink.received())
		act(t, ctx,
			chromedp.Click(css(`tr[data-package="`+f.h2.String()+`"] button.deploy`)),
			chromedp.WaitVisible(css(`#conflict`)),
		)
		banner := get(t, ctx, chromedp.Text(css(`#conflict`)))
		if !strings.Contains(banner, "changed after this page was loaded") || !strings.Contains(banner, "Nothing was overwritten") {
			t.Errorf("conflict banner: %q", banner)
		}
		if got := f.desired("web-2", "hello"); got != f.h1.String() {
			t.Errorf("after the refused write web-2 names %s, want the other editor's %s", got, f.h1)
		}
		if _, v := f.manifest("web-2"); v != behind {
			t.Errorf("manifest version changed from %s to %s: something was written", behind, v)
		}
		// The page shows the new state: h1 is the desired row now, and the
		// forms carry the new version, so a second choice succeeds.
		if cls := get(t, ctx, chromedp.AttributeValue(css(`tr[data-package="`+f.h1.String()+`"]`), "class")); cls.Value != "desired" {
			t.Errorf("conflict page: h1 row class %q, want desired", cls.Value)
		}
		if v := get(t, ctx, chromedp.Value(css(`tr[data-package="`+f.h2.String()+`"] input[name=version]`))); v != string(behind) {
			t.Errorf("conflict page forms carry version %q, want the new %q", v, behind)
		}
		screenshot(t, ctx, "pushui-conflict.png")
		if n := len(sink.received()); n != nudgesBefore {
			t.Errorf("a refused write sent %d nudges", n-nudgesBefore)
		}
		act(t, ctx,
			chromedp.Click(css(`tr[data-package="`+f.h2.String()+`"] button.deploy`)),
			chromedp.WaitVisible(css(`.alert.flash`)),
		)
		if got := f.desired("web-2", "hello"); got != f.h2.String() {
			t.Errorf("second choice: web-2 names %s, want %s", got, f.h2)
		}
	})
}

// demoFleet is a small, realistic fleet: what the README's screenshot
// shows.
func demoFleet(t testing.TB) *fixture {
	t.Helper()
	f := emptyFixture(t)
	f.conf = &manifest.PushConfig{
		Servers: map[string][]string{
			"web-1": {"frontend", "assets"}, "web-2": {"frontend", "assets"}, "web-3": {"frontend", "assets"},
			"api-1": {"api", "search"}, "api-2": {"api", "search"},
			"worker-1": {"worker"},
		},
		Groups: map[string][]string{"web": {"frontend", "assets"}, "api": {"api", "search"}},
	}
	repo := "https://github.com/example/shop"
	pkg := func(app string, hoursAgo int, commit string, dirty bool, note string) manifest.PackageName {
		return f.addPackage(app, fixtureNow.Add(-time.Duration(hoursAgo)*time.Hour), commit+strings.Repeat("0", 40-len(commit)), dirty, repo, note)
	}
	fe1 := pkg("frontend", 50, "4f1c2a9e77d0", false, "checkout redesign")
	fe2 := pkg("frontend", 3, "9b3e0d41c6aa", false, "faster product pages")
	as1 := pkg("assets", 26, "1d7f5c2b80e4", false, "")
	api1 := pkg("api", 30, "c0ffee5e1a2b", false, "rate limits")
	api2 := pkg("api", 1, "e2a94b7d3f10", false, "new orders endpoint")
	se1 := pkg("search", 8, "77aa01bc9d3e", true, "tuning ranking")
	wk1 := pkg("worker", 12, "5a5e3c1f0b92", false, "")

	status := func(server string, heartbeat time.Duration, envs ...manifest.EnvStatus) {
		for i := range envs {
			if envs[i].State == "" {
				envs[i].State = manifest.StateServing
			}
			if envs[i].Updated.IsZero() {
				envs[i].Updated = fixtureNow.Add(-heartbeat - 40*time.Minute)
			}
		}
		var groups []manifest.GroupStatus
		if g, _, ok := strings.Cut(server, "-"); ok && g != "worker" {
			groups = []manifest.GroupStatus{{Name: g}}
		}
		f.setStatus(&manifest.Status{Server: server, PulldVersion: "v1.4.2", Host: manifest.HostInfo{Hostname: server + ".shop.internal"},
			Time: fixtureNow.Add(-heartbeat), PollSeconds: 300, ManifestRevision: 2, Envs: envs, Groups: groups})
	}
	serving := func(app string, p manifest.PackageName) manifest.EnvStatus {
		return manifest.EnvStatus{Env: app, App: app, Desired: p.String(), Serving: p.String()}
	}
	for _, w := range []string{"web-1", "web-2"} {
		f.setManifest(w, fe2, as1)
		f.setManifest(w, fe2, as1)
		status(w, 40*time.Second, serving("frontend", fe2), serving("assets", as1))
	}
	f.setManifest("web-3", fe2, as1)
	f.setManifest("web-3", fe2, as1)
	status("web-3", 20*time.Second,
		manifest.EnvStatus{Env: "frontend", App: "frontend", Desired: fe2.String(), Serving: fe1.String(), State: manifest.StateDeploying, Step: "POST_DOWNLOAD", Updated: fixtureNow.Add(-20 * time.Second)},
		serving("assets", as1))
	f.setManifest("api-1", api2, se1)
	f.setManifest("api-1", api2, se1)
	status("api-1", time.Minute, serving("api", api2), serving("search", se1))
	f.setManifest("api-2", api2, se1)
	f.setManifest("api-2", api2, se1)
	status("api-2", 2*time.Minute,
		manifest.EnvStatus{Env: "api", App: "api", Desired: api2.String(), Serving: api1.String(), State: manifest.StateRolledBack, Step: "POST_RESTART",
			Error: "POST_RESTART failed 3 times: exit status 1", Output: "waiting for http://localhost:8080/healthz\ncurl: (7) Failed to connect to localhost port 8080: Connection refused\nhealth check failed after 30s\n", Updated: fixtureNow.Add(-3 * time.Minute)},
		serving("search", se1))
	f.setManifest("worker-1", wk1)
	f.setManifest("worker-1", wk1)
	status("worker-1", 47*time.Minute, serving("worker", wk1))
	return f
}

// TestBrowserOverview loads the main page of a realistic fleet, opens a
// failed env's error and sees the script output fetched on demand, and
// saves the screenshot the README shows.
func TestBrowserOverview(t *testing.T) {
	f := demoFleet(t)
	hs := httptest.NewServer(f.server())
	t.Cleanup(hs.Close)
	ctx := newBrowser(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	act(t, ctx,
		chromedp.EmulateViewport(1280, 1000),
		chromedp.Navigate(hs.URL+"/"),
		chromedp.WaitVisible(css(`section.server[data-server="api-2"]`)),
	)
	if n := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("details.err pre").length`)); n != 0 {
		t.Fatalf("%d outputs on the page before any was asked for", n)
	}
	act(t, ctx,
		chromedp.Click(css(`section[data-server="api-2"] tr[data-failure-app="api"] details.err summary`)),
		chromedp.WaitVisible(css(`section[data-server="api-2"] tr[data-failure-app="api"] details.err pre`)),
	)
	out := get(t, ctx, chromedp.Text(css(`section[data-server="api-2"] tr[data-failure-app="api"] details.err pre`)))
	if !strings.Contains(out, "Connection refused") || !strings.Contains(out, "health check failed after 30s") {
		t.Errorf("output fetched on demand: %q", out)
	}
	stale := get(t, ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("section.server.stale")).map(s => s.dataset.server)`))
	if strings.Join(stale, ",") != "worker-1" {
		t.Errorf("stale servers %v, want worker-1", stale)
	}
	path := screenshot(t, ctx, "pushui-overview.png")
	if dst := os.Getenv("PUSHPULL_DOCS_SCREENSHOT"); dst != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("docs screenshot: %s", dst)
	}
}
