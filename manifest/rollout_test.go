package manifest_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/manifest"
)

// TestRollout checks how members follow a rollout: canaries and the servers
// whose place falls below the share serve the new package, the others the
// previous one; a larger share keeps every server a smaller one took; the
// shares are about right over many servers; the entry round-trips.
func TestRollout(t *testing.T) {
	v1, v2 := mergePkg(t, "hello", 1), mergePkg(t, "hello", 2)
	r := &manifest.Rollout{ID: "r-1", Previous: v1, Canaries: []string{"web-0007"}}
	e := manifest.Entry{Package: v2, Rollout: r}
	servers := make([]string, 10000)
	for i := range servers {
		servers[i] = fmt.Sprintf("web-%04d", i)
	}
	took := map[string]bool{}
	for _, pct := range []float64{0, 1, 10, 50, 100} {
		r.Percent = pct
		n := 0
		for _, s := range servers {
			got := e.For(s)
			if got.Rollout != nil {
				t.Fatal("a resolved entry carries its rollout")
			}
			if got.Package == v2 {
				n++
			} else if took[s] {
				t.Fatalf("%v%%: %s left the rollout it had joined at a smaller share", pct, s)
			}
			took[s] = got.Package == v2
		}
		if !took["web-0007"] {
			t.Errorf("%v%%: the canary does not serve the new package", pct)
		}
		if want := pct / 100 * float64(len(servers)); float64(n) < want-150 || float64(n) > want+150 {
			t.Errorf("%v%%: %d of %d servers on the new package, want about %.0f", pct, n, len(servers), want)
		}
	}
	m := &manifest.Manifest{Packages: []manifest.Entry{{Package: v2, Rollout: &manifest.Rollout{ID: "r-1", Previous: v1, Percent: 12.5, Canaries: []string{"web-1"}}}}}
	got, err := manifest.Parse(m.Marshal())
	if err != nil || string(got.Marshal()) != string(m.Marshal()) || !strings.Contains(string(m.Marshal()), `"percent": 12.5`) {
		t.Fatalf("round trip: %v\n%s", err, m.Marshal())
	}
	for _, bad := range []string{
		`{"packages": [{"package": "` + v2.String() + `", "rollout": {"id": "r", "previous": "` + mergePkg(t, "api", 1).String() + `", "percent": 5}}]}`,
		`{"packages": [{"package": "` + v2.String() + `", "rollout": {"id": "r", "previous": "` + v1.String() + `", "percent": 101}}]}`,
		`{"packages": [{"package": "` + v2.String() + `", "rollout": {"id": "Bad ID", "previous": "` + v1.String() + `", "percent": 5}}]}`,
		`{"packages": [{"package": "` + v2.String() + `", "rollout": {"id": "r", "percent": 5}}]}`,
		`{"packages": [{"package": "` + v2.String() + `", "rollout": {"id": "r", "previous": "` + v1.String() + `", "percent": 5, "extra": 1}}]}`,
	} {
		if _, err := manifest.Parse([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

// TestMergeRollout checks that Merge resolves a group's rollout for the
// host and says which envs are under one.
func TestMergeRollout(t *testing.T) {
	v1, v2 := mergePkg(t, "hello", 1), mergePkg(t, "hello", 2)
	g := &manifest.Manifest{Packages: []manifest.Entry{{Package: v2, Rollout: &manifest.Rollout{ID: "r-1", Previous: v1, Canaries: []string{"web-1"}}}}}
	for server, want := range map[string]manifest.PackageName{"web-1": v2, "web-2": v1} {
		d := manifest.Merge([]manifest.Source{{Target: manifest.Server(server)}, {Target: manifest.Group("web"), Manifest: g}})
		if len(d.Entries) != 1 || d.Entries[0].Package != want || d.Rollouts["hello"] != "r-1" {
			t.Errorf("%s: %+v (rollouts %v), want %s under r-1", server, d.Entries, d.Rollouts, want)
		}
	}
}

func TestHealth(t *testing.T) {
	v1 := mergePkg(t, "hello", 1)
	m := &manifest.Manifest{Packages: []manifest.Entry{{Package: v1, Health: &manifest.Health{HTTP: "http://127.0.0.1:8081/healthz", Every: 5 * time.Second}}}}
	got, err := manifest.Parse(m.Marshal())
	if err != nil || string(got.Marshal()) != string(m.Marshal()) || got.Packages[0].Health.Period() != 5*time.Second || got.Packages[0].Health.Limit() != manifest.DefaultHealthTimeout {
		t.Fatalf("round trip: %v\n%s", err, m.Marshal())
	}
	for _, bad := range []string{
		`{}`,
		`{"http": "http://x/", "exec": "bin/check"}`,
		`{"http": "ftp://x/"}`,
		`{"exec": "/bin/true"}`,
		`{"exec": "../check"}`,
		`{"exec": "bin/../../x"}`,
		`{"exec": "bin/check", "every": "100ms"}`,
		`{"exec": "bin/check", "every": "5s", "timeout": "10s"}`,
		`{"exec": "bin/check", "every": "soon"}`,
	} {
		doc := `{"packages": [{"package": "` + v1.String() + `", "health": ` + bad + `}]}`
		if _, err := manifest.Parse([]byte(doc)); err == nil {
			t.Errorf("accepted health %s", bad)
		}
	}
}

func TestStageField(t *testing.T) {
	v1, v2 := mergePkg(t, "hello", 1), mergePkg(t, "hello", 2)
	m := &manifest.Manifest{Packages: []manifest.Entry{{Package: v1, Stage: v2}}}
	got, err := manifest.Parse(m.Marshal())
	if err != nil || got.Packages[0].Stage != v2 {
		t.Fatalf("round trip: %v\n%s", err, m.Marshal())
	}
	bad := `{"packages": [{"package": "` + v1.String() + `", "stage": "` + mergePkg(t, "api", 1).String() + `"}]}`
	if _, err := manifest.Parse([]byte(bad)); err == nil {
		t.Error("accepted a stage of another app")
	}
}

func TestRolloutRecord(t *testing.T) {
	v1, v2 := mergePkg(t, "hello", 1), mergePkg(t, "hello", 2)
	var s manifest.RolloutStrategy
	if err := json.Unmarshal([]byte(`{"group": "web", "package": "`+v2.String()+`", "max_failures": "10%", "min_healthy_time": "30s", "stage_first": true}`), &s); err != nil {
		t.Fatal(err)
	}
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if s.Env != "hello" || !slices.Equal(s.Steps, []float64{10, 50, 100}) || s.MaxFailures.Of(25) != 3 || s.MinStaged.Of(7) != 7 || time.Duration(s.MinHealthyTime) != 30*time.Second {
		t.Errorf("strategy with defaults: %+v", s)
	}
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	r := &manifest.RolloutRecord{ID: "web--hello--1", Strategy: s, Previous: v1, State: manifest.RolloutRunning, Created: t0, Updated: t0,
		History: []manifest.RolloutStep{{Canaries: []string{"web-1"}, Hosts: 1, Started: t0}}}
	got, err := manifest.ParseRolloutRecord(r.Marshal())
	if err != nil || string(got.Marshal()) != string(r.Marshal()) {
		t.Fatalf("round trip: %v\n%s", err, r.Marshal())
	}
	for _, bad := range []string{
		`{"group": "web", "package": "` + v2.String() + `", "steps": [10, 50]}`,
		`{"group": "web", "package": "` + v2.String() + `", "steps": [50, 10, 100]}`,
		`{"group": "web", "package": "` + v2.String() + `", "max_failures": "200%"}`,
		`{"group": "Web", "package": "` + v2.String() + `"}`,
	} {
		var s manifest.RolloutStrategy
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			if err = s.WithDefaults().Validate(); err == nil {
				t.Errorf("accepted %s", bad)
			}
		}
	}
}

func TestPushConfigRollouts(t *testing.T) {
	c, err := manifest.ParsePushConfig([]byte(`{"servers": {}, "groups": {"web": ["hello"]}, "rollouts": {"web": {"canary": 2, "steps": [25, 100], "auto_revert": true}}}`))
	if err != nil {
		t.Fatal(err)
	}
	p := mergePkg(t, "hello", 2)
	s := c.RolloutFor("web", p)
	if s.Group != "web" || s.Package != p || s.Canary != 2 || !slices.Equal(s.Steps, []float64{25, 100}) || !s.AutoRevert || s.Env != "hello" || s.Validate() != nil {
		t.Errorf("RolloutFor = %+v", s)
	}
	if got, err := manifest.ParsePushConfig(c.Marshal()); err != nil || string(got.Marshal()) != string(c.Marshal()) {
		t.Errorf("round trip: %v\n%s", err, c.Marshal())
	}
	for _, bad := range []string{
		`{"servers": {}, "rollouts": {"web": {"steps": [50]}}}`,
		`{"servers": {}, "rollouts": {"web": {"group": "web"}}}`,
		`{"servers": {}, "rollouts": {"Web": {}}}`,
	} {
		if _, err := manifest.ParsePushConfig([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

// TestRolloutStrategyDefaults: a JSON strategy is decoded over the
// defaults, so that what it leaves out has its default and an explicit
// zero stays zero; decoding never changes the defaults themselves.
func TestRolloutStrategyDefaults(t *testing.T) {
	for _, tc := range []struct {
		json    string
		healthy time.Duration
		canary  int
		steps   []float64
	}{
		{`{}`, 10 * time.Second, 1, []float64{10, 50, 100}},
		{`{"min_healthy_time": "0s", "canary": 0}`, 0, 0, []float64{10, 50, 100}},
		{`{"steps": [50, 100]}`, 10 * time.Second, 1, []float64{50, 100}},
		{`{"steps": [25, 100], "min_healthy_time": "1m"}`, time.Minute, 1, []float64{25, 100}},
	} {
		t.Run(tc.json, func(t *testing.T) {
			var s manifest.RolloutStrategy
			if err := json.Unmarshal([]byte(tc.json), &s); err != nil {
				t.Fatal(err)
			}
			if time.Duration(s.MinHealthyTime) != tc.healthy || s.Canary != tc.canary || !slices.Equal(s.Steps, tc.steps) {
				t.Errorf("decoded %+v; want min_healthy_time %v, canary %d, steps %v", s, tc.healthy, tc.canary, tc.steps)
			}
			if !slices.Equal(manifest.DefaultRolloutSteps, []float64{10, 50, 100}) {
				t.Fatalf("decoding changed the default steps: %v", manifest.DefaultRolloutSteps)
			}
		})
	}
	var s manifest.RolloutStrategy
	if err := json.Unmarshal([]byte(`{"canaries": 2}`), &s); err == nil {
		t.Error("accepted an unknown field")
	}
}

// TestRolloutRecordConsistency checks that a record that contradicts
// itself is refused whole, with the reason: the controller would
// otherwise index past its history, obey a state it does not know, or
// trust times that cannot be.
func TestRolloutRecordConsistency(t *testing.T) {
	v1, v2 := mergePkg(t, "hello", 1), mergePkg(t, "hello", 2)
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	good := func() *manifest.RolloutRecord {
		s := manifest.RolloutStrategy{Group: "web", Package: v2}.WithDefaults()
		return &manifest.RolloutRecord{ID: "r1", Strategy: s, Previous: v1, State: manifest.RolloutRunning, Created: t0, Updated: t0.Add(time.Minute), Step: 1,
			History: []manifest.RolloutStep{
				{Canaries: []string{"web-1"}, Hosts: 1, Done: 1, Started: t0, Ended: t0.Add(time.Second), Outcome: manifest.StepDone},
				{Percent: 10, Canaries: []string{"web-1"}, Started: t0.Add(time.Second)},
			}}
	}
	if _, err := manifest.ParseRolloutRecord(good().Marshal()); err != nil {
		t.Fatalf("the good record: %v", err)
	}
	tests := []struct {
		name, want string
		bad        func(r *manifest.RolloutRecord)
	}{
		{"step past its history", "outside its history", func(r *manifest.RolloutRecord) { r.Step = 99 }},
		{"negative step", "outside its history", func(r *manifest.RolloutRecord) { r.Step = -1 }},
		{"no history", "no steps", func(r *manifest.RolloutRecord) { r.History, r.Step = nil, 0 }},
		{"unknown state", "state", func(r *manifest.RolloutRecord) { r.State = "exploded" }},
		{"invalid is never stored", "state", func(r *manifest.RolloutRecord) { r.State = manifest.RolloutInvalid }},
		{"unknown outcome", "outcome", func(r *manifest.RolloutRecord) { r.History[0].Outcome = "great" }},
		{"a share the strategy lacks", "not one of the strategy's steps", func(r *manifest.RolloutRecord) { r.History[1].Percent = 42 }},
		{"an earlier step with no outcome", "no outcome", func(r *manifest.RolloutRecord) { r.History[0].Outcome = "" }},
		{"no created time", "no created", func(r *manifest.RolloutRecord) { r.Created = time.Time{} }},
		{"updated before created", "before it was created", func(r *manifest.RolloutRecord) { r.Updated = t0.Add(-time.Hour) }},
		{"a step before the rollout", "before the rollout was created", func(r *manifest.RolloutRecord) { r.History[0].Started = t0.Add(-time.Hour) }},
		{"ended before started", "ended before it started", func(r *manifest.RolloutRecord) { r.History[0].Ended = t0.Add(-time.Hour) }},
		{"steps out of order", "started before step 0", func(r *manifest.RolloutRecord) {
			r.History[0].Started = t0.Add(time.Hour)
			r.History[0].Ended = t0.Add(time.Hour)
		}},
		{"negative hosts", "negative", func(r *manifest.RolloutRecord) { r.History[1].Hosts = -3 }},
		{"a failed host that is no name", "server", func(r *manifest.RolloutRecord) { r.History[1].Failed = []string{"../etc"} }},
		{"staging past the first step", "staging", func(r *manifest.RolloutRecord) { r.Staging = true }},
		{"a holder with no expiry", "expiry", func(r *manifest.RolloutRecord) { r.Lease.Holder = "pushui-a" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := good()
			tc.bad(r)
			_, err := manifest.ParseRolloutRecord(r.Marshal())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseRolloutRecord = %v, want an error saying %q", err, tc.want)
			}
		})
	}

	// A lease no controller takes (2099) is invalid at any time before it.
	r := good()
	r.Lease = manifest.RolloutLease{Holder: "thief", Expires: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := r.CheckLease(t0); err == nil || !strings.Contains(err.Error(), "thief") {
		t.Errorf("CheckLease of a lease until 2099 = %v, want an error naming its holder", err)
	}
	r.Lease.Expires = t0.Add(manifest.MaxRolloutLease)
	if err := r.CheckLease(t0); err != nil {
		t.Errorf("CheckLease of the longest lease = %v", err)
	}
}

func FuzzParseRolloutRecord(f *testing.F) {
	f.Add([]byte(`{"id": "r1", "state": "running", "step": 99, "history": []}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := manifest.ParseRolloutRecord(data)
		if err != nil {
			return
		}
		_ = r.History[r.Step] // a parsed record can be indexed by its step
		if _, err := manifest.ParseRolloutRecord(r.Marshal()); err != nil {
			t.Fatalf("a parsed record does not parse again: %v", err)
		}
	})
}
