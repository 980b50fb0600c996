package pulld

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/testing/pulldtest"
	"github.com/pushpull/pushpull/manifest"
)

// newGroupDaemon returns a daemon for web-1 in groups, on a fresh mem://
// bucket and fake engine.
func newGroupDaemon(t *testing.T, groups ...string) (*daemon, *fakeEngine) {
	t.Helper()
	cfg := testConfig(t)
	cfg.Groups = groups
	eng := newFakeEngine()
	d := newDaemon(cfg, memStore(t), eng, manifest.HostInfo{Hostname: "web-1"})
	eng.hook = d.started
	return d, eng
}

// setGroup writes group's manifest with entries.
func setGroup(t *testing.T, s *blobstore.Store, group string, entries ...manifest.Entry) {
	t.Helper()
	pulldtest.SetDocument(t, s, manifest.Group(group), entries...)
}

// TestGroups checks the merge rules as pulld acts on them: a host with
// groups and no manifest of its own installs its groups' entries; a server
// entry overrides the group's; two groups naming one env hold that env and
// only that one; a group's removed entry stops the env; a missing group
// manifest holds what no document names.
func TestGroups(t *testing.T) {
	hello1, hello2, hello3 := pkg(t, "hello", 1), pkg(t, "hello", 2), pkg(t, "hello", 3)
	api1, db1 := pkg(t, "api", 1), pkg(t, "db", 1)

	t.Run("group only", func(t *testing.T) {
		d, eng := newGroupDaemon(t, "web")
		setGroup(t, d.store, "web", entries(hello1, api1)...)
		if err := d.reconcile(t.Context(), t.Context()).err(); err != nil {
			t.Fatal(err)
		}
		wantCalls(t, eng, "apply hello "+hello1.String(), "apply api "+api1.String())
		st := d.current.Load()
		if es := envState(t, d, "hello"); es.Source != "group:web" || es.State != manifest.StateServing {
			t.Errorf("hello: %+v, want SERVING_BUILD from group:web", es)
		}
		if len(st.Groups) != 1 || st.Groups[0].Name != "web" || st.Groups[0].Revision != 1 || st.Groups[0].Version == "" || st.Groups[0].Missing {
			t.Errorf("status groups = %+v", st.Groups)
		}
		if st.ManifestError != "" {
			t.Errorf("manifest error with groups and no server manifest: %s", st.ManifestError)
		}

		// Removing the group's entry stops the env.
		setGroup(t, d.store, "web", entries(hello1)...)
		if err := d.reconcile(t.Context(), t.Context()).err(); err != nil {
			t.Fatal(err)
		}
		wantCalls(t, eng, "stop api")
		// An explicit empty group manifest removes everything it named.
		setGroup(t, d.store, "web")
		if err := d.reconcile(t.Context(), t.Context()).err(); err != nil {
			t.Fatal(err)
		}
		wantCalls(t, eng, "stop hello")
	})

	t.Run("server entry wins", func(t *testing.T) {
		d, eng := newGroupDaemon(t, "web")
		setGroup(t, d.store, "web", entries(hello1, api1)...)
		setManifest(t, d.store, entries(hello2)...)
		if err := d.reconcile(t.Context(), t.Context()).err(); err != nil {
			t.Fatal(err)
		}
		wantCalls(t, eng, "apply hello "+hello2.String(), "apply api "+api1.String())
		if es := envState(t, d, "hello"); es.Source != "server" || es.Desired != hello2.String() {
			t.Errorf("hello: %+v, want hello2 from server", es)
		}
		// The pin goes: the group's entry applies again.
		setManifest(t, d.store)
		if err := d.reconcile(t.Context(), t.Context()).err(); err != nil {
			t.Fatal(err)
		}
		wantCalls(t, eng, "apply hello "+hello1.String())
	})

	t.Run("two groups name one env", func(t *testing.T) {
		d, eng := newGroupDaemon(t, "web", "canary")
		eng.install(manifest.Entry{Package: hello1})
		setGroup(t, d.store, "web", entries(hello2, api1)...)
		setGroup(t, d.store, "canary", entries(hello3, db1)...)
		cy := d.reconcile(t.Context(), t.Context())
		if !errors.Is(cy.err(), ErrFailed) || !strings.Contains(cy.err().Error(), "hello") {
			t.Errorf("cycle error %v, want ErrFailed naming hello", cy.err())
		}
		wantCalls(t, eng, "apply api "+api1.String(), "apply db "+db1.String()) // hello neither deployed nor stopped
		es := envState(t, d, "hello")
		if !strings.Contains(es.Held, "web, canary") || es.Serving != hello1.String() {
			t.Errorf("hello: %+v, want held naming both groups, still serving hello1", es)
		}
		// The server settles it.
		setManifest(t, d.store, entries(hello3)...)
		if err := d.reconcile(t.Context(), t.Context()).err(); err != nil {
			t.Fatal(err)
		}
		wantCalls(t, eng, "apply hello "+hello3.String())
		if es := envState(t, d, "hello"); es.Held != "" || es.Source != "server" {
			t.Errorf("hello after the server settled it: %+v", es)
		}
	})

	t.Run("missing group manifest", func(t *testing.T) {
		d, eng := newGroupDaemon(t, "web", "gone")
		eng.install(manifest.Entry{Package: db1})
		setGroup(t, d.store, "web", entries(hello1)...)
		cy := d.reconcile(t.Context(), t.Context())
		if !errors.Is(cy.err(), ErrFailed) {
			t.Errorf("cycle error %v, want ErrFailed for the held env", cy.err())
		}
		wantCalls(t, eng, "apply hello "+hello1.String()) // db is not stopped
		if es := envState(t, d, "db"); !strings.Contains(es.Held, "gone") {
			t.Errorf("db: %+v, want held naming group gone", es)
		}
		if st := d.current.Load(); len(st.Groups) != 2 || !st.Groups[1].Missing {
			t.Errorf("status groups = %+v, want gone missing", st.Groups)
		}
		// Once gone has a manifest (an empty one), db is stopped.
		setGroup(t, d.store, "gone")
		if err := d.reconcile(t.Context(), t.Context()).err(); err != nil {
			t.Fatal(err)
		}
		wantCalls(t, eng, "stop db")
	})

	t.Run("invalid group manifest touches nothing", func(t *testing.T) {
		d, eng := newGroupDaemon(t, "web")
		eng.install(manifest.Entry{Package: db1})
		if err := d.store.Put(t.Context(), blobstore.GroupsPrefix+"web.json", []byte(`{"packages": null}`)); err != nil {
			t.Fatal(err)
		}
		cy := d.reconcile(t.Context(), t.Context())
		if !errors.Is(cy.err(), ErrManifest) {
			t.Errorf("cycle error %v, want ErrManifest", cy.err())
		}
		wantCalls(t, eng)
		if st := d.current.Load(); !strings.Contains(st.ManifestError, "groups/web.json") {
			t.Errorf("manifest error %q does not name groups/web.json", st.ManifestError)
		}
	})
}

// TestRolloutSides checks that each member takes its side of a group's
// rollout by itself: the canary serves the new package, the others the
// previous one; a larger share moves more of them with no other write;
// status names the rollout, and while it runs pulld polls and heartbeats
// every RolloutHeartbeat instead of its idle periods.
func TestRolloutSides(t *testing.T) {
	v1, v2 := pkg(t, "hello", 1), pkg(t, "hello", 2)
	r := &manifest.Rollout{ID: "r-1", Previous: v1, Canaries: []string{"web-1"}}
	entry := manifest.Entry{Package: v2, Rollout: r}
	for _, tc := range []struct {
		server string
		want   manifest.PackageName
	}{{"web-1", v2}, {"web-2", v1}} {
		t.Run(tc.server, func(t *testing.T) {
			d, eng := newGroupDaemon(t, "web")
			d.cfg.Server = tc.server
			d.docs = newDocuments(tc.server, []string{"web"})
			setGroup(t, d.store, "web", entry)
			if err := d.reconcile(t.Context(), t.Context()).err(); err != nil {
				t.Fatal(err)
			}
			wantCalls(t, eng, "apply hello "+tc.want.String())
			if es := envState(t, d, "hello"); es.Rollout != "r-1" || es.Desired != tc.want.String() {
				t.Errorf("status %+v, want desired %s under rollout r-1", es, tc.want)
			}
			if hb := d.reportPeriod(); hb != d.cfg.RolloutHeartbeat {
				t.Errorf("status period %v during a rollout, want %v", hb, d.cfg.RolloutHeartbeat)
			}
			if next := d.nextWake(cycle{}, time.Now()); next > d.cfg.RolloutHeartbeat {
				t.Errorf("next poll in %v during a rollout, want within %v", next, d.cfg.RolloutHeartbeat)
			}
			// The rollout reaches 100%: everyone serves v2, and once the
			// entry carries no rollout the idle periods are back.
			all := entry
			all.Rollout = &manifest.Rollout{ID: "r-1", Previous: v1, Percent: 100}
			setGroup(t, d.store, "web", all)
			if err := d.reconcile(t.Context(), t.Context()).err(); err != nil {
				t.Fatal(err)
			}
			if tc.want != v2 {
				wantCalls(t, eng, "apply hello "+v2.String())
			} else {
				wantCalls(t, eng)
			}
			setGroup(t, d.store, "web", manifest.Entry{Package: v2})
			if err := d.reconcile(t.Context(), t.Context()).err(); err != nil {
				t.Fatal(err)
			}
			wantCalls(t, eng)
			if hb := d.reportPeriod(); hb != max(d.cfg.Poll, d.cfg.Heartbeat) {
				t.Errorf("status period %v after the rollout, want the idle %v", hb, max(d.cfg.Poll, d.cfg.Heartbeat))
			}
		})
	}
}

// TestStageEntry checks an entry's stage: pulld stages the package once,
// beside what serves, and reports it; switching to it later is a deploy of
// a kept build.
func TestStageEntry(t *testing.T) {
	d, eng := newGroupDaemon(t, "web")
	v1, v2 := pkg(t, "hello", 1), pkg(t, "hello", 2)
	setGroup(t, d.store, "web", manifest.Entry{Package: v1, Stage: v2})
	if err := d.reconcile(t.Context(), t.Context()).err(); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, eng, "apply hello "+v1.String(), "stage hello "+v2.String())
	if es := envState(t, d, "hello"); es.Staged != v2.String() || es.Serving != v1.String() {
		t.Errorf("status %+v, want serving v1 with v2 staged", es)
	}
	if err := d.reconcile(t.Context(), t.Context()).err(); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, eng) // staged once
}
