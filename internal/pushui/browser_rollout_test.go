package pushui

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/fleetview"
	"github.com/pushpull/pushpull/manifest"
)

// liveFixture is a group web of four members serving hello h1 (group
// manifest and statuses), on the real clock: live pages compare the
// cache's age with it.
func liveFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	f.conf.Groups["web"] = []string{"hello"}
	if _, err := f.store.UpdateManifestAt(t.Context(), manifest.Group("web"), "", false, blobstore.Replace(&manifest.Manifest{Packages: []manifest.Entry{{Package: f.h1}}})); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		f.memberStatus(fmt.Sprintf("web-%d", i+1), f.h1, manifest.StateServing, "")
	}
	return f
}

// liveBrowser serves a liveFixture on the real clock to a new headless
// browser tab; the server stops when the test ends.
func liveBrowser(t *testing.T) (*fixture, *Server, *httptest.Server, context.Context) {
	t.Helper()
	f := liveFixture(t)
	srv := f.server(func(o *Options) { o.Now = time.Now })
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return f, srv, hs, newBrowser(t)
}

// memberStatus writes a status of group web's member server, with hello
// in state serving pkg (or failing with output).
func (f *fixture) memberStatus(server string, pkg manifest.PackageName, state manifest.State, output string) {
	f.t.Helper()
	es := manifest.EnvStatus{Env: "hello", App: "hello", Desired: pkg.String(), Serving: pkg.String(), State: state, Updated: time.Now().UTC()}
	if output != "" {
		es.Serving, es.Error, es.Output, es.Step = "", "POST_RESTART exited with status 1", output, "POST_RESTART"
	}
	f.setStatus(&manifest.Status{Server: server, PulldVersion: "v1.0.0", PollSeconds: 60, Groups: []manifest.GroupStatus{{Name: "web"}},
		Envs: []manifest.EnvStatus{es}})
}

// TestBrowserRollout starts a rollout from the group page in headless
// Chromium and follows it on its page without reloading: the canary's
// report, the next step, a failing host with its script output, pause and
// resume with the buttons; the group page and the index show the active
// rollout; a half-typed form on a live page survives an update.
func TestBrowserRollout(t *testing.T) {
	f, srv, hs, ctx := liveBrowser(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	textOf := func(sel string) string { return get(t, ctx, chromedp.Text(css(sel))) }
	waitText := func(sel, want string) { t.Helper(); waitText(t, ctx, sel, want, 8*time.Second) }
	stillSamePage := func() {
		t.Helper()
		if !get(t, ctx, chromedp.Evaluate[bool](`window.__sameDocument === true`)) {
			t.Fatal("the page was reloaded: live updates must not reload it")
		}
	}
	acceptConfirms := script(`window.confirm = q => { sessionStorage.setItem("asked", q); return true }; window.__sameDocument = true`)

	act(t, ctx,
		chromedp.Navigate(hs.URL+"/groups/web"),
		chromedp.WaitVisible(css(`form.rollout-start`)),
		acceptConfirms,
		chromedp.SetValue(css(`form.rollout-start select[name=package]`), f.h2.String()),
		chromedp.SetValue(css(`form.rollout-start input[name=steps]`), "50, 100"),
		chromedp.SetValue(css(`form.rollout-start input[name=min_healthy_time]`), "0s"),
		chromedp.Click(css(`form.rollout-start button`)),
		chromedp.WaitVisible(css(`#rollout-state`)),
		acceptConfirms,
	)
	if got := textOf("#rollout-state"); got != "running" {
		t.Fatalf("rollout state %q, want running", got)
	}
	if got := textOf(".alert.flash"); !strings.Contains(got, f.h2.String()) {
		t.Errorf("flash %q does not name the build", got)
	}
	if asked := get(t, ctx, chromedp.Evaluate[string](`sessionStorage.getItem("asked")`)); !strings.Contains(asked, f.h2.Commit) || !strings.Contains(asked, "faster greetings") {
		t.Errorf("the confirmation asked %q: want the build's commit and note", asked)
	}
	recs, _, err := f.store.ListRollouts(t.Context(), "web", "", 10)
	if err != nil || len(recs) != 1 || recs[0].Err != nil {
		t.Fatalf("rollouts in the bucket: %v, %v", recs, err)
	}
	rec := recs[0].Record
	canary := rec.History[0].Canaries[0]
	if got := textOf("#serving"); got != "0" {
		t.Errorf("serving the new build: %s, want 0", got)
	}

	t.Run("canary reports", func(t *testing.T) {
		f.memberStatus(canary, f.h2, manifest.StateServing, "")
		waitText("#serving", "1")
		stillSamePage()
	})

	t.Run("next step", func(t *testing.T) {
		if err := srv.svc.Rollouts.Tick(t.Context()); err != nil {
			t.Fatal(err)
		}
		waitText("#steps tbody", "50% of members")
		stillSamePage()
	})

	t.Run("failing host", func(t *testing.T) {
		got, _, err := f.store.ReadRollout(t.Context(), blobstore.RolloutRef{Group: "web", Env: "hello", ID: rec.ID})
		if err != nil {
			t.Fatal(err)
		}
		r := &manifest.Rollout{ID: got.ID, Previous: got.Previous, Percent: got.History[got.Step].Percent, Canaries: got.History[got.Step].Canaries}
		victim := canary // unless the wave has another member
		for i := range 4 {
			if s := fmt.Sprintf("web-%d", i+1); s != canary && r.Takes(s) {
				victim = s
				break
			}
		}
		f.memberStatus(victim, f.h2, manifest.StateFailed, "curl: (7) Failed to connect to localhost port 8081\n")
		waitText("#failing", "Failed to connect to localhost port 8081")
		waitText("#failing", victim)
		stillSamePage()
	})

	t.Run("pause and resume", func(t *testing.T) {
		act(t, ctx,
			chromedp.Click(css(`button.cmd-pause`)),
			chromedp.WaitVisible(css(`button.cmd-resume`)),
			acceptConfirms,
		)
		if got := textOf("#rollout-state"); got != "paused" {
			t.Errorf("after pause: %q", got)
		}
		if r, _, _ := f.store.ReadRollout(t.Context(), blobstore.RolloutRef{Group: "web", Env: "hello", ID: rec.ID}); r.State != manifest.RolloutPaused {
			t.Errorf("bucket says %s after pause", r.State)
		}
		act(t, ctx,
			chromedp.Click(css(`button.cmd-resume`)),
			chromedp.WaitVisible(css(`button.cmd-pause`)),
			acceptConfirms,
		)
		if r, _, _ := f.store.ReadRollout(t.Context(), blobstore.RolloutRef{Group: "web", Env: "hello", ID: rec.ID}); r.State != manifest.RolloutRunning {
			t.Errorf("bucket says %s after resume", r.State)
		}
		screenshot(t, ctx, "pushui-rollout.png")
	})

	t.Run("group page and index", func(t *testing.T) {
		act(t, ctx,
			chromedp.Navigate(hs.URL+"/"),
			chromedp.WaitVisible(css(`#groups`)),
		)
		if got := textOf(`#groups tr[data-group="web"]`); !strings.Contains(got, "hello: 50%") {
			t.Errorf("index's group row %q does not show the active rollout", got)
		}
		act(t, ctx,
			chromedp.Navigate(hs.URL+"/groups/web"),
			chromedp.WaitVisible(css(`#rollouts`)),
			script(`window.__sameDocument = true`),
		)
		if got := textOf(`#entries`); !strings.Contains(got, "rollout: 50%") {
			t.Errorf("group entries %q do not show the active rollout", got)
		}
		// A half-typed form survives an update of the page around it.
		steps := func() string {
			return get(t, ctx, chromedp.Evaluate[string](`document.querySelector("form.rollout-start input[name=steps]").value`))
		}
		act(t, ctx, chromedp.SendKeys(css(`form.rollout-start input[name=steps]`), "75"))
		typed := steps()
		if !strings.Contains(typed, "75") {
			t.Fatalf("typing did not reach the form: %q", typed)
		}
		f.memberStatus("web-4", f.h1, manifest.StateDeploying, "")
		waitText(`#members tr[data-server="web-4"]`, "DEPLOYING")
		if v := steps(); v != typed {
			t.Errorf("the form being typed in lost its text: %q, was %q", v, typed)
		}
		stillSamePage()
	})
}

// waitText waits up to d, without reloading, until the text of the page's
// element sel contains want, and fails the test (with a screenshot) if it
// does not.
func waitText(t *testing.T, ctx context.Context, sel, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := get(t, ctx, chromedp.Evaluate[string](`(document.querySelector(`+jsString(sel)+`) || {}).textContent || ""`))
		if strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			screenshot(t, ctx, "pushui-stuck.png")
			t.Fatalf("%s shows %q, want %q within %v without a reload", sel, got, want, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// script is a browser step that runs js and ignores its value.
func script(js string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[any](js)(ctx, tg)
		return err
	})
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// TestBrowserLive checks that the server page and the index follow the
// fleet without a reload: a host's deploy shows in progress, then serving,
// each within about two seconds of its status write.
func TestBrowserLive(t *testing.T) {
	f, _, hs, ctx := liveBrowser(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	within := func(sel, want string, d time.Duration) { t.Helper(); waitText(t, ctx, sel, want, d) }
	for _, page := range []struct{ name, path, row string }{
		{"server page", "/servers/web-3", `tr[data-app="hello"]`},
		{"index", "/", `section[data-server="web-3"] tr[data-app="hello"]`},
	} {
		t.Run(page.name, func(t *testing.T) {
			act(t, ctx,
				chromedp.Navigate(hs.URL+page.path),
				chromedp.WaitVisible(css(page.row)),
				script(`window.__sameDocument = true`),
			)
			deploying := manifest.EnvStatus{Env: "hello", App: "hello", Desired: f.h2.String(), Serving: f.h1.String(), State: manifest.StateDeploying, Action: "deploy", Updated: time.Now().UTC()}
			f.setStatus(&manifest.Status{Server: "web-3", PollSeconds: 60, Groups: []manifest.GroupStatus{{Name: "web"}}, Envs: []manifest.EnvStatus{deploying}})
			start := time.Now()
			within(page.row, "DEPLOYING", 3*time.Second)
			if cls := get(t, ctx, chromedp.Evaluate[string](`document.querySelector(`+jsString(page.row)+`).className`)); !strings.Contains(cls, "progress") {
				t.Errorf("a deploy under way has class %q, want progress", cls)
			}
			t.Logf("DEPLOYING shown %v after the status write", time.Since(start).Round(time.Millisecond))
			f.memberStatus("web-3", f.h1, manifest.StateServing, "")
			within(page.row, "SERVING_BUILD", 3*time.Second)
			if !get(t, ctx, chromedp.Evaluate[bool](`window.__sameDocument === true`)) {
				t.Fatal("the page was reloaded")
			}
		})
	}

	t.Run("failure panel and times", func(t *testing.T) {
		textOf := func(sel string) string { return get(t, ctx, chromedp.Text(css(sel))) }
		tokyo, err := time.LoadLocation("Asia/Tokyo")
		if err != nil {
			t.Fatal(err)
		}
		f.memberStatus("web-2", f.h2, manifest.StateFailed, "curl: (7) Failed to connect to localhost port 8081 after 0 ms: Couldn't connect to server\n")
		act(t, ctx,
			chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := cdp.Call(ctx, tg, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Tokyo"})
				return err
			}),
			chromedp.Navigate(hs.URL+"/servers/web-2"),
			chromedp.WaitVisible(css(`tr[data-failure-app="hello"] summary`)),
			chromedp.Click(css(`tr[data-failure-app="hello"] summary`)),
			chromedp.WaitVisible(css(`tr[data-failure-app="hello"] pre`)),
		)
		ratio := get(t, ctx, chromedp.Evaluate[float64](`document.querySelector('tr[data-failure-app="hello"] td').offsetWidth / document.querySelector('tr[data-failure-app="hello"]').closest("table").offsetWidth`))
		if ratio < 0.95 {
			t.Errorf("the failure panel is %.0f%% of the table's width, want all of it", ratio*100)
		}
		if got := textOf(`tr[data-failure-app="hello"] summary`); !strings.Contains(got, "POST_RESTART exited with status 1") || !strings.Contains(got, "at POST_RESTART") {
			t.Errorf("failure summary %q: want the error and its step", got)
		}
		// One format everywhere, whatever the viewer's zone: relative,
		// with the absolute time in UTC on hover.
		heartbeat := textOf(`section.server .facts time`)
		if heartbeat != "just now" && !strings.HasSuffix(heartbeat, " ago") || strings.Contains(heartbeat, time.Now().In(tokyo).Format("15:04")) {
			t.Errorf("heartbeat shown as %q: want it relative only", heartbeat)
		}
		title := get(t, ctx, chromedp.Evaluate[string](`document.querySelector("section.server .facts time").title`))
		if _, err := time.Parse("2006-01-02 15:04:05 UTC", title); err != nil {
			t.Errorf("heartbeat's hover %q: want the absolute time in UTC (%v)", title, err)
		}
		built := textOf(`section.server .pkg time`)
		if _, err := time.Parse(time.DateOnly, built); !strings.HasSuffix(built, " ago") && err != nil { // older than a month: its date
			t.Errorf("a build time shown as %q: want it relative, as every time", built)
		}
		screenshot(t, ctx, "pushui-failure.png")
	})
}

// TestBrowserFailingRollout follows a rollout whose canary fails, in
// headless Chromium, as the README's v3 step tells it: while the canary
// has rolled back, and after the controller reverted the group and the
// canary serves the previous build again, the Failing hosts panel shows
// the canary with the rollout's step, the step that failed, its exit code
// and the first lines of the script's output; the state reads reverted;
// the canary's server page keeps the failed attempt.
func TestBrowserFailingRollout(t *testing.T) {
	f, srv, hs, ctx := liveBrowser(t)
	waitText := func(sel, want string) { t.Helper(); waitText(t, ctx, sel, want, 8*time.Second) }
	rec, err := srv.svc.Rollouts.Start(t.Context(), manifest.RolloutStrategy{Group: "web", Package: f.h2, Canary: 1, AutoRevert: true}, "ann")
	if err != nil {
		t.Fatal(err)
	}
	canary := rec.History[0].Canaries[0]
	act(t, ctx, chromedp.Navigate(hs.URL+fleetview.RolloutURL("web", "hello", rec.ID)), chromedp.WaitVisible(chromedp.CSS(`#rollout-state`)))

	// The canary's pulld: POST_RESTART exits 3, it rolls back to h1 and
	// remembers the failure.
	output := "waiting for hello on :8081\nhello did not answer within 3 s\n"
	failed := manifest.Outcome{Package: f.h2.String(), Action: "deploy", State: manifest.StateRolledBack, DeployID: "d-1", Time: time.Now().UTC(),
		Step: "POST_RESTART", Error: "POST_RESTART: exit status 3; rolled back to " + f.h1.String(), ExitCode: 3, Output: output}
	es := manifest.EnvStatus{Env: "hello", App: "hello", Desired: f.h2.String(), Serving: f.h1.String(), State: manifest.StateRolledBack, Step: "POST_RESTART",
		Error: failed.Error, ExitCode: 3, Output: output, DeployID: "d-1", Updated: time.Now().UTC(), Source: "group:web", Rollout: rec.ID,
		Recent: []manifest.Outcome{failed}}
	f.setStatus(&manifest.Status{Server: canary, PollSeconds: 60, Groups: []manifest.GroupStatus{{Name: "web"}}, Envs: []manifest.EnvStatus{es}})
	for _, want := range []string{canary, "canaries", "POST_RESTART", "exit 3", "hello did not answer within 3 s"} {
		waitText("#failing", want)
	}

	if err := srv.svc.Rollouts.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitText("#rollout-state", "reverted")
	// Reverted: the canary serves h1 again, as desired; its status no
	// longer carries the error, only the outcome it remembers.
	es.Desired, es.State, es.Step, es.Error, es.ExitCode, es.Output, es.Rollout = f.h1.String(), manifest.StateServing, "", "", 0, "", ""
	f.setStatus(&manifest.Status{Server: canary, PollSeconds: 60, Groups: []manifest.GroupStatus{{Name: "web"}}, Envs: []manifest.EnvStatus{es}})
	for _, want := range []string{canary, "POST_RESTART", "exit 3", "hello did not answer within 3 s"} {
		waitText("#failing", want)
	}
	if got := get(t, ctx, chromedp.Text(chromedp.CSS(`#failing`))); strings.Contains(got, "None.") {
		t.Errorf("the panel says None. after the revert: %q", got)
	}

	act(t, ctx, chromedp.Navigate(hs.URL+"/servers/"+canary), chromedp.WaitVisible(chromedp.CSS(`#live-server`)))
	if got := get(t, ctx, chromedp.Text(chromedp.CSS(`#live-server`))); !strings.Contains(got, "Last attempt failed") || !strings.Contains(got, "POST_RESTART") || !strings.Contains(got, "exit 3") {
		t.Errorf("the canary's server page after it serves h1 again: %q, want the failed attempt kept", got)
	}
}
