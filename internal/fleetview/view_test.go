package fleetview

import (
	"testing"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
)

var testNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func pkgName(t *testing.T, s string) manifest.PackageName {
	t.Helper()
	p, err := manifest.ParsePackageName(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBuildServer checks the per-host view without a server: what a row
// says for each way a host can stand against its desired state.
func TestBuildServer(t *testing.T) {
	h1 := pkgName(t, "hello/hello-20261101T000000Z-0123456789ab.tar.zst")
	h2 := pkgName(t, "hello/hello-20261102T000000Z-0123456789ac.tar.zst")
	conf := &manifest.PushConfig{Servers: map[string][]string{"web-1": {"hello"}}}
	status := func(state manifest.State, serving manifest.PackageName, heartbeat time.Time, revision int64) *manifest.Status {
		st := &manifest.Status{Server: "web-1", Time: heartbeat, ManifestRevision: revision,
			Envs: []manifest.EnvStatus{{Env: "hello", App: "hello", State: state, Serving: serving.String(), Updated: heartbeat}}}
		if serving.IsZero() {
			st.Envs[0].Serving = ""
		}
		return st
	}
	fresh := testNow.Add(-time.Second)
	for _, tc := range []struct {
		name   string
		status *manifest.Status
		class  string
		same   bool
	}{
		{"serving the desired build", status(manifest.StateServing, h2, fresh, 2), "", true},
		{"deploying it", status(manifest.StateDeploying, h1, fresh, 2), "progress", false},
		{"has not read the new revision yet", status(manifest.StateServing, h1, fresh, 1), "progress", false},
		{"read it and serves another build", status(manifest.StateServing, h1, fresh, 2), "drift", false},
		{"failed and rolled back", status(manifest.StateRolledBack, h1, fresh, 2), "failed", false},
		{"silent for an hour while behind", status(manifest.StateServing, h1, testNow.Add(-time.Hour), 1), "drift", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{Name: "web-1", Manifest: &manifest.Manifest{Revision: 2, Packages: []manifest.Entry{{Package: h2}}}, Version: "v2", Status: tc.status}
			v := BuildServer(s, conf, nil, nil, testNow, false, NewLabels())
			if len(v.Rows) != 1 {
				t.Fatalf("rows = %+v, want one", v.Rows)
			}
			r := v.Rows[0]
			if r.Class != tc.class || r.Same != tc.same || r.Source != manifest.SourceServer || r.Desired.Name != h2.String() {
				t.Errorf("row = class %q same %v source %q desired %s; want class %q same %v source server desired %s", r.Class, r.Same, r.Source, r.Desired.Name, tc.class, tc.same, h2)
			}
		})
	}
}

// TestBuildGroup checks a group's view: its members are the hosts whose
// status names it, counted by state, with those whose own manifest
// overrides the group's entry.
func TestBuildGroup(t *testing.T) {
	h1 := pkgName(t, "hello/hello-20261101T000000Z-0123456789ab.tar.zst")
	h2 := pkgName(t, "hello/hello-20261102T000000Z-0123456789ac.tar.zst")
	member := func(name string, serving manifest.PackageName, state manifest.State, own *manifest.Manifest, version string) *Server {
		return &Server{Name: name, Manifest: own, Version: blobstore.Version(version), Status: &manifest.Status{Server: name, Time: testNow,
			Groups: []manifest.GroupStatus{{Name: "web", Revision: 4}},
			Envs:   []manifest.EnvStatus{{Env: "hello", App: "hello", State: state, Serving: serving.String()}}}}
	}
	st := &State{
		Servers: map[string]*Server{
			"web-1": member("web-1", h2, manifest.StateServing, &manifest.Manifest{}, ""),
			"web-2": member("web-2", h1, manifest.StateFailed, &manifest.Manifest{}, ""),
			"web-3": member("web-3", h1, manifest.StateServing, &manifest.Manifest{Packages: []manifest.Entry{{Package: h1}}}, "v1"),
			"db-1":  {Name: "db-1", Status: &manifest.Status{Server: "db-1", Time: testNow}},
		},
		Order:      []string{"db-1", "web-1", "web-2", "web-3"},
		GroupOrder: []string{"web"},
		Groups:     map[string]*Group{"web": {Name: "web", Manifest: &manifest.Manifest{Revision: 4, Packages: []manifest.Entry{{Package: h2}}}, Version: "g4"}},
	}
	st.index()
	g := BuildGroup(st, &manifest.PushConfig{Groups: map[string][]string{"web": {"hello"}}}, "web", testNow, NewLabels())
	counts := map[manifest.State]int{}
	for _, c := range g.Counts {
		counts[c.State] = c.N
	}
	if g.MemberCount != 3 || g.Overrides != 1 || counts[manifest.StateServing] != 2 || counts[manifest.StateFailed] != 1 || g.Entries[0].Done != 1 {
		t.Errorf("group = %d members, %d overrides, counts %v, done %d; want 3, 1, 2 serving 1 failed, 1 done", g.MemberCount, g.Overrides, counts, g.Entries[0].Done)
	}
	sums := Summaries(st, &manifest.PushConfig{}, testNow, NewLabels())
	if len(sums) != 1 || sums[0].Name != "web" || sums[0].Members != 3 || sums[0].Done != 1 {
		t.Fatalf("summaries = %+v, want web with 3 members, 1 done", sums)
	}
	if e := sums[0].Envs; len(e) != 1 || e[0].Env != "hello" || e[0].Package != h2.String() || e[0].Done != 1 || e[0].States["SERVING_BUILD"] != 2 || e[0].States["FAILED"] != 1 {
		t.Errorf("the group's envs = %+v, want hello on h2: 1 done, 2 serving, 1 failed", e)
	}
}

// TestGeneration checks that a live page's generation moves with the
// state and with the rollout record, and not otherwise.
func TestGeneration(t *testing.T) {
	a, b := &State{gen: 7}, &State{gen: 8}
	if Generation(a, "") == Generation(b, "") || Generation(a, `"r1"`) == Generation(a, `"r2"`) || Generation(a, "") != Generation(&State{gen: 7}, "") {
		t.Errorf("generations: %q %q %q %q", Generation(a, ""), Generation(b, ""), Generation(a, `"r1"`), Generation(a, `"r2"`))
	}
}
