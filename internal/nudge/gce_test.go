package nudge

import (
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushpull/pushpull/internal/testing/computetest"
)

const (
	testProject = "my-project"
	testZone    = "us-central1-a"
	testGCE     = testProject + "/" + testZone
)

// inst names the instance of server in the test project and zone.
func inst(server string) computetest.Instance {
	return computetest.Instance{Project: testProject, Zone: testZone, Name: server}
}

// gceNudger is a Nudger with only the GCE form, talking to cs.
func gceNudger(t *testing.T, cs *computetest.Server, log *slog.Logger) *Nudger {
	t.Helper()
	n, err := New(t.Context(), Config{GCE: testGCE, GCEEndpoint: cs.Endpoint, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if !n.Enabled() {
		t.Fatal("Enabled() = false with GCE configured")
	}
	t.Cleanup(func() { n.Close(t.Context()) })
	return n
}

// items returns the metadata items of server's instance, failing the test
// when it does not exist.
func items(t *testing.T, cs *computetest.Server, server string) map[string]string {
	t.Helper()
	it, ok := cs.Items(inst(server))
	if !ok {
		t.Fatalf("instance %s gone", server)
	}
	return it
}

// withoutPushrev returns m without the pushrev item.
func withoutPushrev(m map[string]string) map[string]string {
	m = maps.Clone(m)
	delete(m, PushrevKey)
	return m
}

// TestNudgeGCE checks that every nudge sets pushrev of each server's
// instance to a value it never had before and keeps every other item, with
// or without a pushrev already there.
func TestNudgeGCE(t *testing.T) {
	tests := []struct {
		name  string
		items map[string]string
	}{
		{"no metadata", map[string]string{}},
		{"other items", map[string]string{"startup-script": "#!/bin/sh\necho hi\n", "enable-oslogin": "TRUE", "empty": ""}},
		{"pushrev already set", map[string]string{"pushrev": "set-by-hand", "ssh-keys": "alice:ssh-ed25519 AAAA alice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := computetest.Start(t)
			for _, s := range []string{"web-1", "web-2"} {
				cs.Add(inst(s), tt.items)
			}
			n := gceNudger(t, cs, nil)
			seen := map[string]bool{tt.items[PushrevKey]: true}
			for round := range 3 {
				if err := n.Nudge(t.Context(), "web-1", "web-2"); err != nil {
					t.Fatalf("round %d: Nudge: %v", round, err)
				}
				for _, s := range []string{"web-1", "web-2"} {
					got := items(t, cs, s)
					rev, ok := got[PushrevKey]
					if !ok || rev == "" {
						t.Fatalf("round %d: %s has no pushrev: %v", round, s, got)
					}
					if seen[rev] {
						t.Fatalf("round %d: %s pushrev %q is not new", round, s, rev)
					}
					seen[rev] = true
					if want := withoutPushrev(tt.items); !maps.Equal(withoutPushrev(got), want) {
						t.Fatalf("round %d: %s items %q, want %q kept", round, s, withoutPushrev(got), want)
					}
				}
			}
		})
	}
}

// TestNudgeGCEFingerprintRace checks the 412 retry: someone else changes
// the instance's metadata between the nudger's get and its setMetadata.
// Up to gceAttempts-1 such races, the nudge succeeds and keeps the other
// writer's change; with a race on every attempt it fails, saying so.
func TestNudgeGCEFingerprintRace(t *testing.T) {
	tests := []struct {
		name  string
		races int
		ok    bool
	}{
		{"one race", 1, true},
		{"races until the last attempt", gceAttempts - 1, true},
		{"a race on every attempt", gceAttempts + 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := computetest.Start(t)
			cs.Add(inst("web-1"), map[string]string{"startup-script": "true"})
			var (
				mu    sync.Mutex
				calls int
			)
			cs.BeforeSetMetadata(func(in computetest.Instance) {
				mu.Lock()
				calls++
				race := calls <= tt.races
				mu.Unlock()
				if race {
					cs.SetItem(in, "other-tool", "changed")
				}
			})
			n := gceNudger(t, cs, nil)
			err := n.Nudge(t.Context(), "web-1")
			got := items(t, cs, "web-1")
			mu.Lock()
			defer mu.Unlock()
			if !tt.ok {
				if err == nil {
					t.Fatalf("Nudge succeeded although every setMetadata lost a race; items %v", got)
				}
				for _, want := range []string{"web-1", "412", "metadata changed"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not mention %s", err, want)
					}
				}
				if calls != gceAttempts {
					t.Errorf("%d setMetadata calls, want %d attempts", calls, gceAttempts)
				}
				if _, ok := got[PushrevKey]; ok {
					t.Errorf("pushrev set although every attempt failed: %v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Nudge after %d races: %v", tt.races, err)
			}
			if calls != tt.races+1 {
				t.Errorf("%d setMetadata calls, want %d (one per race, and the one that won)", calls, tt.races+1)
			}
			if got[PushrevKey] == "" || got["other-tool"] != "changed" || got["startup-script"] != "true" {
				t.Errorf("items %v, want pushrev set and both other items kept", got)
			}
		})
	}
}

// TestNudgeGCEFailures checks that a server whose instance does not exist,
// or whose name cannot be an instance name, fails alone: the error names
// it, it is logged, and the other servers are nudged.
func TestNudgeGCEFailures(t *testing.T) {
	tests := []struct {
		server string
		want   []string
	}{
		{"web-9", []string{"nudge web-9: gce:", "404", "not found"}},
		{"db_1", []string{"nudge db_1: gce:", "not a GCE instance name"}},
		{"9web", []string{"nudge 9web: gce:", "not a GCE instance name"}},
	}
	for _, tt := range tests {
		t.Run(tt.server, func(t *testing.T) {
			cs := computetest.Start(t)
			cs.Add(inst("web-1"), map[string]string{"a": "1"})
			var logs strings.Builder
			n := gceNudger(t, cs, slog.New(slog.NewTextHandler(&logs, nil)))
			err := n.Nudge(t.Context(), "web-1", tt.server)
			if err == nil {
				t.Fatalf("Nudge of %s succeeded", tt.server)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "web-1") {
				t.Errorf("error %q blames web-1, which was nudged", err)
			}
			if got := items(t, cs, "web-1"); got[PushrevKey] == "" || got["a"] != "1" {
				t.Errorf("web-1 items %v, want pushrev set and a kept", got)
			}
			if !strings.Contains(logs.String(), "server="+tt.server) || !strings.Contains(logs.String(), "via=gce") {
				t.Errorf("failure not logged:\n%s", logs.String())
			}
		})
	}
}

// TestNudgeGCEUnreachable checks that a Compute API that is not there is a
// per-nudge failure naming the server, not a hang.
func TestNudgeGCEUnreachable(t *testing.T) {
	cs := computetest.Start(t)
	endpoint := cs.Endpoint
	n, err := New(t.Context(), Config{GCE: testGCE, GCEEndpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	cs.Close()
	if err := n.Nudge(t.Context(), "web-1"); err == nil || !strings.Contains(err.Error(), "nudge web-1: gce:") {
		t.Fatalf("Nudge with the API gone = %v, want an error naming web-1", err)
	}
}

// TestNudgeGCEEndpointSlash checks that an endpoint without its trailing
// slash still reaches the API's paths under it.
func TestNudgeGCEEndpointSlash(t *testing.T) {
	cs := computetest.Start(t)
	cs.Add(inst("web-1"), nil)
	n, err := New(t.Context(), Config{GCE: testGCE, GCEEndpoint: strings.TrimSuffix(cs.Endpoint, "/")})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Nudge(t.Context(), "web-1"); err != nil {
		t.Fatal(err)
	}
	if items(t, cs, "web-1")[PushrevKey] == "" {
		t.Fatal("pushrev not set")
	}
}

func TestParseGCE(t *testing.T) {
	tests := []struct {
		in            string
		project, zone string // empty: refused
		why           string // part of the error when refused
	}{
		{"my-project/us-central1-a", "my-project", "us-central1-a", ""},
		{"example.com:my-project/europe-west4-b", "example.com:my-project", "europe-west4-b", ""},
		{"abcdef/z1", "abcdef", "z1", ""},
		{"", "", "", "want PROJECT/ZONE"},
		{"my-project", "", "", "want PROJECT/ZONE"},
		{"my-project/us-central1-a/x", "", "", "want PROJECT/ZONE"},
		{"/us-central1-a", "", "", "not a project ID"},
		{"my-project/", "", "", "not a zone name"},
		{"My-Project/us-central1-a", "", "", "not a project ID"},
		{"short/us-central1-a", "", "", "not a project ID"},
		{"my-project-/us-central1-a", "", "", "not a project ID"},
		{"1project/us-central1-a", "", "", "not a project ID"},
		{"my-project/us-central1-a?x=1", "", "", "not a zone name"},
		{"my-project/US-CENTRAL1-A", "", "", "not a zone name"},
		{"my project/us-central1-a", "", "", "not a project ID"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			g, err := parseGCE(tt.in)
			if tt.project == "" {
				if err == nil {
					t.Fatalf("parseGCE(%q) = %+v, want an error", tt.in, g)
				}
				msg := err.Error()
				if !strings.Contains(msg, tt.why) || !strings.Contains(msg, `"`+tt.in+`"`) || strings.Contains(msg, "\n") {
					t.Fatalf("error %q: want one line naming %q and saying %q", msg, tt.in, tt.why)
				}
				return
			}
			if err != nil || g.project != tt.project || g.zone != tt.zone {
				t.Fatalf("parseGCE(%q) = %+v, %v; want %s in %s", tt.in, g, err, tt.project, tt.zone)
			}
		})
	}
}

func TestNewErrorsGCE(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no zone", Config{GCE: "my-project"}, `nudge: GCE "my-project": want PROJECT/ZONE`},
		{"bad project", Config{GCE: "Nope/us-central1-a"}, `project "Nope"`},
		{"endpoint not http", Config{GCE: testGCE, GCEEndpoint: "ftp://example.com/"}, "GCE endpoint"},
		{"endpoint without host", Config{GCE: testGCE, GCEEndpoint: "http:///compute/v1/"}, "GCE endpoint"},
		// No Application Default Credentials: New fails before anything
		// is changed, not at the first nudge.
		{"no credentials", Config{GCE: testGCE}, "nudge: gce:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/adc.json")
			_, err := New(t.Context(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestNewPushrev checks that pushrev values made at the same instant differ.
func TestNewPushrev(t *testing.T) {
	fixedTime := time.Unix(1_800_000_000, 0)
	seen := map[string]bool{}
	for range 1000 {
		v := newPushrev(fixedTime)
		if seen[v] {
			t.Fatalf("newPushrev repeated %q at the same instant", v)
		}
		seen[v] = true
	}
}

// TestNudgeGCEGroup checks a group nudge by GCE: one change of the
// project's common instance metadata item GroupPushrevKey(group), to a new
// value each time, keeping every other project item and touching no
// instance.
func TestNudgeGCEGroup(t *testing.T) {
	cs := computetest.Start(t)
	cs.Add(inst("web-1"), map[string]string{"startup-script": "x"})
	cs.AddProject(testProject, map[string]string{"ssh-keys": "alice:ssh-ed25519 AAAA alice"})
	n := gceNudger(t, cs, nil)
	key := GroupPushrevKey("web.eu")
	if key != "pushrev-group-web_eu" {
		t.Errorf("GroupPushrevKey(web.eu) = %q", key)
	}
	seen := map[string]bool{}
	for round := range 2 {
		if err := n.NudgeGroup(t.Context(), "web.eu", 10); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		got, _ := cs.ProjectItems(testProject)
		if rev := got[key]; rev == "" || seen[rev] || got["ssh-keys"] == "" {
			t.Fatalf("round %d: project items %q: want a new %s and ssh-keys kept", round, got, key)
		} else {
			seen[rev] = true
		}
	}
	if got := items(t, cs, "web-1"); len(got) != 1 {
		t.Errorf("instance items %q: a group nudge touched an instance", got)
	}
}
