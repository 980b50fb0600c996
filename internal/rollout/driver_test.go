package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/internal/rollout"
	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/manifest"
)

// sim is a group of simulated members: each takes its side of the group's
// entry (Entry.For, as pulld does through manifest.Merge) and reports it
// serving, healthy, unless the build is one that breaks.
type sim struct {
	t      testing.TB
	store  *blobstore.Store
	now    time.Time
	names  []string
	broken map[manifest.PackageName]bool
	ran    map[string][]manifest.PackageName // what each member has run
	// forged replaces a member's status with one of the test's: what a
	// writer of status/{server}.json other than its pulld can report.
	forged map[string]func(st *manifest.Status)
	mu     sync.Mutex
}

func newSim(t *testing.T, n int) *sim { return newSimAt(t, n, "file://"+t.TempDir()) }

// newSimAt is newSim on the bucket at url.
func newSimAt(t testing.TB, n int, url string) *sim {
	s := &sim{t: t, now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), broken: map[manifest.PackageName]bool{}, ran: map[string][]manifest.PackageName{},
		forged: map[string]func(*manifest.Status){}}
	st, err := blobstore.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s.store = st
	for i := range n {
		s.names = append(s.names, fmt.Sprintf("web-%02d", i))
	}
	if _, err := st.WritePushConfig(t.Context(), &manifest.PushConfig{Servers: map[string][]string{}, Groups: map[string][]string{"web": {"hello"}}}, ""); err != nil {
		t.Fatal(err)
	}
	return s
}

// members is Driver.Members: every member has acted on the group's entry
// and has served its side for a minute.
func (s *sim) members(ctx context.Context, group string) ([]rollout.Member, error) {
	m, _, err := s.store.ReadManifest(ctx, manifest.Group(group))
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []rollout.Member
	for _, name := range s.names {
		st := &manifest.Status{Server: name, Groups: []manifest.GroupStatus{{Name: group, Revision: m.Revision}}}
		if e, ok := m.Lookup("hello"); ok {
			var rid string
			if e.Rollout != nil {
				rid = e.Rollout.ID
			}
			e = e.For(name)
			es := manifest.EnvStatus{Env: "hello", App: "hello", Desired: e.Package.String(), Serving: e.Package.String(), State: manifest.StateServing,
				Updated: s.now.Add(-time.Minute), Source: manifest.Group(group).Source(), Rollout: rid}
			if !e.Stage.IsZero() {
				es.Staged = e.Stage.String()
			}
			if runs := s.ran[name]; len(runs) == 0 || runs[len(runs)-1] != e.Package {
				s.ran[name] = append(s.ran[name], e.Package)
			}
			if s.broken[e.Package] {
				es.State, es.Error = manifest.StateRolledBack, "POST_RESTART failed"
				es.Serving = ""
			}
			st.Envs = append(st.Envs, es)
		}
		if f := s.forged[name]; f != nil {
			f(st)
		}
		out = append(out, rollout.Member{Name: name, Status: st})
	}
	return out, nil
}

func (s *sim) driver(holder string) *rollout.Driver {
	return &rollout.Driver{Store: s.store, Fleet: fleet.New(s.store, fleet.Options{}), Holder: holder,
		Members: s.members, Now: func() time.Time { return s.now }, Log: slog.New(slog.DiscardHandler)}
}

func (s *sim) setGroup(p manifest.PackageName) {
	s.t.Helper()
	if _, err := s.store.UpdateManifest(s.t.Context(), manifest.Group("web"), func(m *manifest.Manifest, _ bool) error {
		m.Packages = []manifest.Entry{{Package: p}}
		return nil
	}); err != nil {
		s.t.Fatal(err)
	}
}

// run ticks d until the rollout leaves running (or paused), at most n times.
func (s *sim) run(d *rollout.Driver, r *manifest.RolloutRecord, n int) *manifest.RolloutRecord {
	s.t.Helper()
	for range n {
		if err := d.Tick(s.t.Context()); err != nil {
			s.t.Fatal(err)
		}
		s.now = s.now.Add(15 * time.Second)
		got, _, err := s.store.ReadRollout(s.t.Context(), blobstore.RolloutRef{Group: r.Strategy.Group, Env: r.Strategy.Env, ID: r.ID})
		if err != nil {
			s.t.Fatal(err)
		}
		if got.State != manifest.RolloutRunning {
			return got
		}
	}
	s.t.Fatalf("rollout still running after %d ticks", n)
	return nil
}

func TestRolloutSucceeds(t *testing.T) {
	s := newSim(t, 20)
	v1 := deploytest.Build(t, s.store, "hello", 1, nil)
	v2 := deploytest.Build(t, s.store, "hello", 2, nil)
	s.setGroup(v1)
	d := s.driver("pushui-a")
	r, err := d.Start(t.Context(), manifest.RolloutStrategy{Group: "web", Package: v2, Canary: 1, MinHealthyTime: manifest.Duration(time.Second)}, "ann")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Start(t.Context(), manifest.RolloutStrategy{Group: "web", Package: v2}, "bob"); !errors.Is(err, rollout.ErrActive) {
		t.Errorf("second Start = %v, want ErrActive", err)
	}
	got := s.run(d, r, 20)
	if got.State != manifest.RolloutSucceeded {
		t.Fatalf("state %s (%s), want succeeded", got.State, got.Reason)
	}
	// canaries, 10%, 50%, 100%, then the plain entry: one write a step,
	// each audited as such.
	if len(got.History) != 4 {
		t.Errorf("%d steps, want 4: %+v", len(got.History), got.History)
	}
	m, _, _ := s.store.ReadManifest(t.Context(), manifest.Group("web"))
	if e, _ := m.Lookup("hello"); e.Package != v2 || e.Rollout != nil {
		t.Errorf("entry after success %+v, want v2 without a rollout", e)
	}
	if recs, _ := s.store.ListAudit(t.Context(), manifest.Group("web"), 20); len(recs) != 5 {
		t.Errorf("%d writes of the group manifest, want 5 (start, 10%%, 50%%, 100%%, done)", len(recs))
	}
}

func TestRolloutBrokenCanaryReverts(t *testing.T) {
	s := newSim(t, 20)
	v1 := deploytest.Build(t, s.store, "hello", 1, nil)
	v3 := deploytest.Build(t, s.store, "hello", 3, nil)
	s.setGroup(v1)
	s.broken[v3] = true
	d := s.driver("pushui-a")
	r, err := d.Start(t.Context(), manifest.RolloutStrategy{Group: "web", Package: v3, Canary: 1, AutoRevert: true}, "ann")
	if err != nil {
		t.Fatal(err)
	}
	got := s.run(d, r, 10)
	if got.State != manifest.RolloutReverted {
		t.Fatalf("state %s (%s), want reverted", got.State, got.Reason)
	}
	ranV3 := 0
	for _, runs := range s.ran {
		for _, p := range runs {
			if p == v3 {
				ranV3++
			}
		}
	}
	if ranV3 != 1 {
		t.Errorf("%d hosts ran the broken build, want exactly the canary", ranV3)
	}
	m, _, _ := s.store.ReadManifest(t.Context(), manifest.Group("web"))
	if e, _ := m.Lookup("hello"); e.Package != v1 || e.Rollout != nil {
		t.Errorf("entry after the revert %+v, want v1", e)
	}
}

func TestRolloutPauseResumeAndStage(t *testing.T) {
	s := newSim(t, 10)
	v1 := deploytest.Build(t, s.store, "hello", 1, nil)
	v2 := deploytest.Build(t, s.store, "hello", 2, nil)
	s.setGroup(v1)
	d := s.driver("pushui-a")
	r, err := d.Start(t.Context(), manifest.RolloutStrategy{Group: "web", Package: v2, Canary: 2, PauseAfterCanary: true, StageFirst: true}, "ann")
	if err != nil {
		t.Fatal(err)
	}
	m, _, _ := s.store.ReadManifest(t.Context(), manifest.Group("web"))
	if e, _ := m.Lookup("hello"); e.Stage != v2 || e.Rollout == nil || e.Rollout.Percent != 0 || len(e.Rollout.Canaries) != 0 {
		t.Fatalf("first step of stage_first: %+v, want v2 staged with nobody on it", e)
	}
	got := s.run(d, r, 10)
	if got.State != manifest.RolloutPaused || len(got.History) != 2 || got.History[0].Outcome != "staged" || len(got.History[1].Canaries) != 2 {
		t.Fatalf("after staging and canaries: %s %+v", got.State, got.History)
	}
	if _, err := d.Command(t.Context(), blobstore.RolloutRef{Group: "web", Env: "hello", ID: r.ID}, rollout.Command("resume"), "ann"); err != nil {
		t.Fatal(err)
	}
	if got = s.run(d, r, 20); got.State != manifest.RolloutSucceeded {
		t.Fatalf("after resume: %s (%s)", got.State, got.Reason)
	}
	if _, err := d.Command(t.Context(), blobstore.RolloutRef{Group: "web", Env: "hello", ID: r.ID}, rollout.Command("pause"), "ann"); !errors.Is(err, rollout.ErrNotActive) {
		t.Errorf("pause of a finished rollout = %v, want ErrNotActive", err)
	}
}

// TestRolloutLease checks that of two controllers ticking one rollout only
// the lease holder moves it, and that the other takes over once the lease
// has run out (its holder died).
func TestRolloutLease(t *testing.T) {
	s := newSim(t, 10)
	v1 := deploytest.Build(t, s.store, "hello", 1, nil)
	v2 := deploytest.Build(t, s.store, "hello", 2, nil)
	s.setGroup(v1)
	a, b := s.driver("pushui-a"), s.driver("pushui-b")
	r, err := a.Start(t.Context(), manifest.RolloutStrategy{Group: "web", Package: v2, Canary: 1, MinHealthyTime: manifest.Duration(time.Second)}, "ann")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, _, _ := s.store.ReadRollout(t.Context(), blobstore.RolloutRef{Group: "web", Env: "hello", ID: r.ID})
	if got.Lease.Holder != "pushui-a" || got.Step != 0 {
		t.Fatalf("b moved a's rollout: %+v", got)
	}
	s.now = s.now.Add(rollout.DefaultLease + time.Second) // a died
	if got = s.run(b, r, 20); got.State != manifest.RolloutSucceeded {
		t.Errorf("after a's lease ran out: %s (%s)", got.State, got.Reason)
	}
	recs, _ := s.store.ListAudit(t.Context(), manifest.Group("web"), 1)
	if len(recs) != 1 || recs[0].User != "pushui-b" {
		t.Errorf("the last step was written by %+v, want pushui-b", recs)
	}
}
