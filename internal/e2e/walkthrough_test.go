package e2e_test

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/client"
	"github.com/pushpull/pushpull/manifest"
)

// TestReadmeWalkthrough follows the README's walkthrough of the demo with
// the real programs and the sample app (three pullds of one group, a
// pushui, a file:// bucket) and checks each state it names:
//
//  1. v2 rolled out: while the canary takes it the others keep v1; the
//     rollout succeeds and the entry is plain v2 again, served by all;
//  2. v3, broken: the canary reports ROLLED_BACK at POST_RESTART, the
//     Failing hosts panel shows it (the step, exit 1, the output's first
//     lines), the state reads reverted with its reason, the others never
//     ran v3, the panel keeps the canary after it serves v2 again, and the
//     canary's server page keeps the failed attempt;
//  3. v1 deployed to the whole group at once: every member serves it;
//  4. one host pinned to v2 (the hotfix): it serves v2, the others v1.
func TestReadmeWalkthrough(t *testing.T) {
	w := newRolloutWorld(t, "file://"+t.TempDir())
	_, ui := w.startUI("pushui")
	get := func(path string) string {
		t.Helper()
		// As a live page's script does: /api/live refreshes pushui's view
		// of the bucket.
		if resp, err := w.client.Get(ui + "/api/live"); err == nil {
			resp.Body.Close()
		}
		resp, err := w.client.Get(ui + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s\n%s", path, resp.Status, b)
		}
		return string(b)
	}
	waitPage := func(path, what string, want ...string) string {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			page := get(path)
			missing := slices.IndexFunc(want, func(s string) bool { return !strings.Contains(page, s) })
			if missing < 0 {
				return page
			}
			if time.Now().After(deadline) {
				if i := strings.Index(page, `id="failing"`); i >= 0 {
					page = page[i:]
				}
				t.Fatalf("%s: %s does not show %q within 60 s:\n%s", what, path, want[missing], page)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	group := func() manifest.Entry {
		t.Helper()
		m, _, err := w.store.ReadManifest(t.Context(), manifest.Group("web"))
		if err != nil {
			t.Fatal(err)
		}
		e, _ := m.Lookup("hello")
		return e
	}
	// The rollouts as the README gives them: pushctl, against this pushui.
	url := []string{"PUSHCTL_URL=" + ui}
	strategy := []string{"-group", "web", "-canary", "1", "-steps", "50,100", "-min-healthy-time", "1s", "-auto-revert"}
	start := func(pkg manifest.PackageName) string {
		t.Helper()
		r := pushctl(t, url, append(append([]string{"rollout", "start"}, strategy...), pkg.String())...)
		if r.code != 0 {
			t.Fatalf("pushctl rollout start %s: exit %d", pkg, r.code)
		}
		return startedID(t, r.stdout)
	}

	// 1. v2: canary, then waves.
	id := start(w.pkgs["v2"])
	r := w.record(id)
	canary := r.History[0].Canaries[0]
	if e := group(); e.Package != w.pkgs["v2"] || e.Rollout == nil || e.Rollout.Previous != w.pkgs["v1"] || !slices.Equal(e.Rollout.Canaries, []string{canary}) {
		t.Fatalf("group entry after the start: %+v, want v2 with v1 as previous and the canary named", e)
	}
	w.waitServing(w.pkgs["v2"], canary)
	if watch := pushctl(t, url, "rollout", "watch", "-timeout", "2m", id); watch.code != 0 || !strings.Contains(watch.stdout, "succeeded") {
		t.Fatalf("pushctl rollout watch %s: exit %d, want 0", id, watch.code)
	}
	r = w.record(id)
	if r.State != manifest.RolloutSucceeded {
		t.Fatalf("v2 rollout: %s (%s), want succeeded", r.State, r.Reason)
	}
	if e := group(); e.Package != w.pkgs["v2"] || e.Rollout != nil {
		t.Errorf("entry after success %+v, want plain v2", e)
	}
	w.waitServing(w.pkgs["v2"], rolloutMembers...)

	// 2. v3, broken.
	id = start(w.pkgs["v3"])
	canary = w.record(id).History[0].Canaries[0]
	page := "/rollouts/web/hello/" + id
	panel := []string{canary, "canaries", "ROLLED_BACK", "POST_RESTART", "exit 1", "hello did not come up"}
	waitPage(page, "the failing canary", panel...)
	if watch := pushctl(t, url, "rollout", "watch", "-timeout", "2m", id); watch.code != 1 || !strings.Contains(watch.stderr, canary+" failed") {
		t.Fatalf("pushctl rollout watch %s of the broken v3: exit %d, want 1 naming the canary", id, watch.code)
	}
	r = w.record(id)
	if r.State != manifest.RolloutReverted || !strings.Contains(r.Reason, "1 host failed ("+canary+")") {
		t.Fatalf("v3 rollout: %s (%s), want reverted: 1 host failed (%s)", r.State, r.Reason, canary)
	}
	if e := group(); e.Package != w.pkgs["v2"] || e.Rollout != nil {
		t.Errorf("entry after the revert %+v, want plain v2", e)
	}
	w.waitServing(w.pkgs["v2"], rolloutMembers...)
	for _, m := range rolloutMembers {
		if m != canary && w.ranBuild(m, w.pkgs["v3"]) {
			t.Errorf("%s ran v3: only the canary may", m)
		}
	}
	rp := waitPage(page, "the reverted rollout", append(panel, `id="rollout-state">reverted<`)...)
	if strings.Contains(rp[strings.Index(rp, `id="failing"`):], "None.") {
		t.Errorf("the Failing hosts panel says None. after the revert")
	}
	waitPage("/servers/"+canary, "the canary's page", "Last attempt failed", "ROLLED_BACK", "POST_RESTART", "exit 1")
	waitPage("/groups/web", "the group's history", "rolled back on "+canary+" (at POST_RESTART, exit 1)")

	// 3. v1 to the whole group at once.
	if _, err := w.api(ui).Deploy(t.Context(), client.DeployRequest{Group: "web", Package: w.pkgs["v1"].String()}); err != nil {
		t.Fatalf("deploy v1 to the group: %v", err)
	}
	w.waitServing(w.pkgs["v1"], rolloutMembers...)

	// 4. Pin one host to v2.
	conf, v, err := w.store.ReadPushConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	conf.Servers["web-1"] = []string{"hello"}
	if _, err := w.store.WritePushConfig(t.Context(), conf, v); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := w.api(ui).Deploy(t.Context(), client.DeployRequest{Servers: []string{"web-1"}, Package: w.pkgs["v2"].String()})
		if err == nil {
			break
		}
		if !errors.Is(err, client.ErrBadRequest) || time.Now().After(deadline) { // pushui reads the new config within its refresh
			t.Fatalf("pin web-1 to v2: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	w.waitServing(w.pkgs["v2"], "web-1")
	w.waitServing(w.pkgs["v1"], "web-2", "web-3")
	waitPage("/servers/web-1", "the pinned host", "pinned")
}
