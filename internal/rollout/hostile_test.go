package rollout_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/internal/rollout"
	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/internal/testing/syncbuf"
	"github.com/pushpull/pushpull/internal/testing/testserver"
	"github.com/pushpull/pushpull/manifest"
)

// eachBackend runs test on file:// and on a real S3 server (versitygw),
// each subtest with a fresh bucket from bucket.
func eachBackend(t *testing.T, test func(t *testing.T, bucket func() string)) {
	t.Run("file", func(t *testing.T) { test(t, func() string { return "file://" + t.TempDir() }) })
	t.Run("s3", func(t *testing.T) {
		s3 := testserver.StartS3(t)
		s3.Setenv(t)
		test(t, func() string { return s3.Bucket(t, "") })
	})
}

// logBuffer is a logger whose lines a test can read.
type logBuffer struct{ syncbuf.Buffer }

// count returns how many lines hold every one of words.
func (l *logBuffer) count(words ...string) int {
	n := 0
	for line := range strings.Lines(l.String()) {
		all := true
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			n++
		}
	}
	return n
}

// put writes raw bytes at key, as a person or a broken tool would.
func (s *sim) put(key, data string) {
	s.t.Helper()
	if err := s.store.Put(s.t.Context(), key, []byte(data)); err != nil {
		s.t.Fatal(err)
	}
}

// record is a running rollout record of group env, valid unless changed.
func (s *sim) record(group, env, id string, p, prev manifest.PackageName) *manifest.RolloutRecord {
	st := manifest.RolloutStrategy{Group: group, Env: env, Package: p}.WithDefaults()
	return &manifest.RolloutRecord{ID: id, Strategy: st, Previous: prev, State: manifest.RolloutRunning, Created: s.now, Updated: s.now,
		History: []manifest.RolloutStep{{Percent: 10, Started: s.now}}}
}

// TestBadRecordsAreTheirOwnProblem puts records no controller wrote into
// the bucket beside a good rollout: a step past its history, bytes that
// are not JSON, a lease until 2099, a marker that does not parse. The
// controller neither panics nor stops: the good rollout of another group
// completes, each bad record is logged once, listed and shown as invalid
// with its reason, refuses every command but abort, and abort clears it
// (a record that does not parse is moved aside, a lease no controller
// takes is dropped) so that a new rollout can start.
func TestBadRecordsAreTheirOwnProblem(t *testing.T) {
	eachBackend(t, func(t *testing.T, bucket func() string) {
		s := newSimAt(t, 10, bucket())
		ctx := t.Context()
		if _, _, err := s.store.ReadPushConfig(ctx); err != nil {
			t.Fatal(err)
		}
		conf := &manifest.PushConfig{Servers: map[string][]string{}, Groups: map[string][]string{"web": {"hello"}, "db": {"hello"}}}
		_, v, _ := s.store.ReadPushConfig(ctx)
		if _, err := s.store.WritePushConfig(ctx, conf, v); err != nil {
			t.Fatal(err)
		}
		v1 := deploytest.Build(t, s.store, "hello", 1, nil)
		v2 := deploytest.Build(t, s.store, "hello", 2, nil)
		s.setGroup(v1)
		for _, g := range []string{"db"} {
			if _, err := s.store.UpdateManifest(ctx, manifest.Group(g), func(m *manifest.Manifest, _ bool) error {
				m.Packages = []manifest.Entry{{Package: v1}}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}

		// Step 99 of no history, as the issue found it.
		step99 := s.record("web", "hello", "r-step99", v2, v1)
		step99.Step, step99.History = 99, nil
		s.put("rollouts/web/hello/r-step99.json", string(step99.Marshal()))
		s.put("rollouts/_current/web/hello.json", `{"id": "r-step99"}`)
		// Not JSON at all.
		s.put("rollouts/web/api/r-garbage.json", "not json\n")
		s.put("rollouts/_current/web/api.json", `{"id": "r-garbage"}`)
		// A lease until 2099.
		held := s.record("web", "cron", "r-2099", v2, v1)
		held.Lease = manifest.RolloutLease{Holder: "thief", Expires: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)}
		s.put("rollouts/web/cron/r-2099.json", string(held.Marshal()))
		s.put("rollouts/_current/web/cron.json", `{"id": "r-2099"}`)
		// A marker that does not parse.
		s.put("rollouts/_current/web/batch.json", `{"id": `)

		logs := &logBuffer{}
		d := s.driver("pushui-a")
		d.Log = slog.New(slog.NewTextHandler(logs, nil))
		good, err := d.Start(ctx, manifest.RolloutStrategy{Group: "db", Package: v2, Canary: 1, MinHealthyTime: manifest.Duration(time.Second)}, "ann")
		if err != nil {
			t.Fatal(err)
		}
		if got := s.run(d, good, 20); got.State != manifest.RolloutSucceeded {
			t.Fatalf("the good rollout beside the bad records: %s (%s), want succeeded", got.State, got.Reason)
		}
		for _, id := range []string{"r-step99", "r-garbage", "r-2099"} {
			if n := logs.count("rollout skipped", id); n != 1 {
				t.Errorf("%s logged %d times over the ticks, want once", id, n)
			}
		}

		recs, _, err := d.List(ctx, "web", "", 10)
		if err != nil {
			t.Fatal(err)
		}
		why := map[string]string{}
		for _, r := range recs {
			if r.State != manifest.RolloutInvalid {
				t.Errorf("%s listed as %s, want invalid", r.ID, r.State)
			}
			why[r.ID] = r.Reason
		}
		for id, want := range map[string]string{"r-step99": "no steps in its history", "r-garbage": "not a JSON object", "r-2099": "lease"} {
			if !strings.Contains(why[id], want) {
				t.Errorf("%s listed with reason %q, want it to say %q", id, why[id], want)
			}
		}

		// Commands: only abort.
		if _, err := d.Command(ctx, blobstore.RolloutRef{Group: "web", Env: "cron", ID: "r-2099"}, rollout.Pause, "ann"); !errors.Is(err, rollout.ErrInvalid) {
			t.Errorf("pause of an invalid record = %v, want ErrInvalid", err)
		}
		if _, err := d.Start(ctx, manifest.RolloutStrategy{Group: "web", Package: v2}, "ann"); !errors.Is(err, rollout.ErrActive) || !strings.Contains(err.Error(), "r-step99") {
			t.Errorf("start over an invalid current rollout = %v, want ErrActive naming it", err)
		}
		for _, ref := range []blobstore.RolloutRef{{Group: "web", Env: "hello", ID: "r-step99"}, {Group: "web", Env: "api", ID: "r-garbage"}} {
			r, err := d.Command(ctx, ref, rollout.Abort, "ann")
			if err != nil || r.State != manifest.RolloutAborted {
				t.Fatalf("abort of %s: %+v, %v", ref.ID, r, err)
			}
			if _, _, err := s.store.ReadRollout(ctx, ref); !errors.Is(err, blobstore.ErrNotFound) {
				t.Errorf("%s after abort: %v, want it moved aside", ref.ID, err)
			}
			key, _ := ref.Key()
			if _, _, err := s.store.Read(ctx, key+".invalid"); err != nil {
				t.Errorf("%s.invalid: %v, want the bytes kept", key, err)
			}
		}
		r, err := d.Command(ctx, blobstore.RolloutRef{Group: "web", Env: "cron", ID: "r-2099"}, rollout.Abort, "ann")
		if err != nil || r.State != manifest.RolloutAborted || r.Lease.Holder != "" {
			t.Fatalf("abort of the 2099 lease: %+v, %v", r, err)
		}
		if got, _, err := d.Get(ctx, blobstore.RolloutRef{Group: "web", Env: "cron", ID: "r-2099"}); err != nil || got.State != manifest.RolloutAborted {
			t.Errorf("the 2099 rollout after abort: %+v, %v, want aborted and valid", got, err)
		}
		// The group env is free again.
		if _, err := d.Start(ctx, manifest.RolloutStrategy{Group: "web", Package: v2, Canary: 1}, "ann"); err != nil {
			t.Errorf("start after the invalid record was aborted: %v", err)
		}
	})
}

// TestOneRolloutsPanicIsItsOwn makes deciding one rollout panic (its
// members cannot be read sanely): the tick reports it as that rollout's
// error, and another group's rollout goes on.
func TestOneRolloutsPanicIsItsOwn(t *testing.T) {
	s := newSim(t, 5)
	ctx := t.Context()
	_, v, _ := s.store.ReadPushConfig(ctx)
	if _, err := s.store.WritePushConfig(ctx, &manifest.PushConfig{Servers: map[string][]string{}, Groups: map[string][]string{"web": {"hello"}, "db": {"hello"}}}, v); err != nil {
		t.Fatal(err)
	}
	v1 := deploytest.Build(t, s.store, "hello", 1, nil)
	v2 := deploytest.Build(t, s.store, "hello", 2, nil)
	s.setGroup(v1)
	if _, err := s.store.UpdateManifest(ctx, manifest.Group("db"), func(m *manifest.Manifest, _ bool) error {
		m.Packages = []manifest.Entry{{Package: v1}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	d := s.driver("pushui-a")
	bad, err := d.Start(ctx, manifest.RolloutStrategy{Group: "db", Package: v2, MinHealthyTime: manifest.Duration(time.Second)}, "ann")
	if err != nil {
		t.Fatal(err)
	}
	good, err := d.Start(ctx, manifest.RolloutStrategy{Group: "web", Package: v2, MinHealthyTime: manifest.Duration(time.Second)}, "ann")
	if err != nil {
		t.Fatal(err)
	}
	members := d.Members
	d.Members = func(ctx context.Context, group string) ([]rollout.Member, error) {
		if group == "db" {
			var m map[string]int
			m["boom"]++ // a nil map: panics
		}
		return members(ctx, group)
	}
	for range 20 {
		err := d.Tick(ctx)
		if err == nil || !strings.Contains(err.Error(), bad.ID) || !strings.Contains(err.Error(), "internal error") {
			t.Fatalf("tick = %v, want the panic as rollout %s's error", err, bad.ID)
		}
		s.now = s.now.Add(15 * time.Second)
	}
	if got, _, _ := d.Get(ctx, blobstore.RefOf(good)); got.State != manifest.RolloutSucceeded {
		t.Errorf("the other group's rollout: %s (%s), want succeeded", got.State, got.Reason)
	}
}

// TestDeployUnderRollout checks that a plain deploy to a group under an
// active rollout, or to one of its members, is refused naming the
// rollout; that a config change is not; that asking to abort first aborts
// it, deploys, and says so in the audit; and that a deploy after an abort
// leaves no rollout block behind.
func TestDeployUnderRollout(t *testing.T) {
	eachBackend(t, func(t *testing.T, bucket func() string) {
		s := newSimAt(t, 5, bucket())
		ctx := t.Context()
		v1 := deploytest.Build(t, s.store, "hello", 1, nil)
		v2 := deploytest.Build(t, s.store, "hello", 2, nil)
		v3 := deploytest.Build(t, s.store, "hello", 3, nil)
		_, v, _ := s.store.ReadPushConfig(ctx)
		if _, err := s.store.WritePushConfig(ctx, &manifest.PushConfig{Servers: map[string][]string{"web-00": {"hello"}}, Groups: map[string][]string{"web": {"hello"}}}, v); err != nil {
			t.Fatal(err)
		}
		s.setGroup(v1)
		if err := s.store.WriteStatus(ctx, &manifest.Status{Server: "web-00", Groups: []manifest.GroupStatus{{Name: "web"}}}); err != nil {
			t.Fatal(err)
		}
		d := s.driver("pushui-a")
		w := fleet.New(s.store, fleet.Options{AbortRollout: func(ctx context.Context, group, env, id, user string) error {
			_, err := d.Command(ctx, blobstore.RolloutRef{Group: group, Env: env, ID: id}, rollout.Abort, user)
			return err
		}})
		d.Fleet = w
		r, err := d.Start(ctx, manifest.RolloutStrategy{Group: "web", Package: v2, Canary: 1, PauseAfterCanary: true}, "ann")
		if err != nil {
			t.Fatal(err)
		}
		set := func(p manifest.PackageName) func(*manifest.Manifest) error {
			return func(m *manifest.Manifest) error { m.SetPackage(p); return nil }
		}
		var active *fleet.RolloutActiveError
		for _, target := range []manifest.Target{manifest.Group("web"), manifest.Server("web-00")} {
			_, err := w.Edit(ctx, fleet.Edit{Target: target, User: "bob", Action: "set hello", Latest: true, Apply: set(v3)})
			if !errors.As(err, &active) || active.ID != r.ID || !strings.Contains(err.Error(), r.ID) {
				t.Errorf("deploy to %s under rollout %s = %v, want it refused naming the rollout", target, r.ID, err)
			}
		}
		// What a rollout does not drive may change: the entry's config.
		if _, err := w.Edit(ctx, fleet.Edit{Target: manifest.Group("web"), User: "bob", Action: "config", Latest: true, Apply: func(m *manifest.Manifest) error {
			m.Packages[0].Config = map[string]string{"GREETING": "hi"}
			return nil
		}}); err != nil {
			t.Errorf("config change under a rollout: %v", err)
		}
		// Abort first, in one request.
		c, err := w.Edit(ctx, fleet.Edit{Target: manifest.Group("web"), User: "bob", Action: "set hello to v3", Latest: true, Apply: set(v3), AbortRollout: true})
		if err != nil {
			t.Fatal(err)
		}
		if e, _ := c.After.Lookup("hello"); e.Package != v3 || e.Rollout != nil || !e.Stage.IsZero() {
			t.Errorf("entry after a deploy that aborted the rollout: %+v, want v3 with no rollout", e)
		}
		if got, _, _ := d.Get(ctx, blobstore.RefOf(r)); got.State != manifest.RolloutAborted {
			t.Errorf("the rollout after the deploy: %s, want aborted", got.State)
		}
		audit, _ := s.store.ListAudit(ctx, manifest.Group("web"), 1)
		if len(audit) != 1 || !strings.Contains(audit[0].Action, "aborted rollout "+r.ID) || audit[0].User != "bob" {
			t.Errorf("audit of the deploy: %+v, want it to say it aborted %s", audit, r.ID)
		}

		// Aborted by hand, then a plain deploy: no stale block.
		r, err = d.Start(ctx, manifest.RolloutStrategy{Group: "web", Package: v2, Canary: 1, PauseAfterCanary: true}, "ann")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Command(ctx, blobstore.RefOf(r), rollout.Abort, "ann"); err != nil {
			t.Fatal(err)
		}
		c, err = w.Edit(ctx, fleet.Edit{Target: manifest.Group("web"), User: "bob", Action: "set hello to v2", Latest: true, Apply: set(v2)})
		if err != nil {
			t.Fatalf("deploy after an abort: %v", err)
		}
		if e, _ := c.After.Lookup("hello"); e.Package != v2 || e.Rollout != nil {
			t.Errorf("entry after a plain deploy of the aborted build: %+v, want v2 with no rollout block", e)
		}
	})
}

// TestFalseStatusDoesNotPass forges the canary's status, as a writer of
// status/{server}.json other than its pulld could, while its real deploy
// of a broken build fails: as another server, with no rollout, as serving
// since before the rollout, from the future. None passes the canary gate:
// the rollout never moves past its canaries, is reverted at the healthy
// deadline, and only the canary ran the broken build.
func TestFalseStatusDoesNotPass(t *testing.T) {
	tests := []struct {
		name  string
		forge func(st *manifest.Status, r *manifest.RolloutRecord, now time.Time)
		want  string
	}{
		{"another server's", func(st *manifest.Status, r *manifest.RolloutRecord, _ time.Time) {
			st.Server = "web-99" // refused as inconsistent: the canary has no status
		}, "no status naming the group"},
		{"written by hand", func(st *manifest.Status, r *manifest.RolloutRecord, _ time.Time) {
			st.Envs[0].Rollout = ""
		}, "not this one"},
		{"serving since before", func(st *manifest.Status, r *manifest.RolloutRecord, _ time.Time) {
			st.Envs[0].Updated = r.Created.Add(-time.Hour)
		}, "since before the rollout began"},
		{"from the future", func(st *manifest.Status, r *manifest.RolloutRecord, now time.Time) {
			st.Envs[0].Updated = now.Add(time.Hour)
		}, "future"},
	}
	eachBackend(t, func(t *testing.T, bucket func() string) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				s := newSimAt(t, 6, bucket())
				s.now = time.Now().UTC() // the statuses' times are the bucket's
				v1 := deploytest.Build(t, s.store, "hello", 1, nil)
				v3 := deploytest.Build(t, s.store, "hello", 3, nil)
				s.setGroup(v1)
				s.broken[v3] = true
				d := s.driver("pushui-a")
				r, err := d.Start(t.Context(), manifest.RolloutStrategy{Group: "web", Package: v3, Canary: 1, AutoRevert: true, MinHealthyTime: manifest.Duration(time.Second)}, "ann")
				if err != nil {
					t.Fatal(err)
				}
				canary := r.History[0].Canaries[0]
				s.forged[canary] = func(st *manifest.Status) {
					es := &st.Envs[0]
					es.State, es.Serving, es.Error = manifest.StateServing, v3.String(), "" // the lie
					tc.forge(st, r, s.now)
				}
				// Every status goes through the bucket, the forged one
				// written at the canary's key as a thief would.
				fromBucket := rollout.BucketMembers(s.store, func() time.Time { return s.now })
				d.Members = func(ctx context.Context, group string) ([]rollout.Member, error) {
					ms, err := s.members(ctx, group)
					if err != nil {
						return nil, err
					}
					for _, m := range ms {
						m.Status.Time = time.Time{} // pulld leaves it to the object
						if err := s.store.Put(ctx, "status/"+m.Name+".json", m.Status.Marshal()); err != nil {
							return nil, err
						}
					}
					return fromBucket(ctx, group)
				}
				got := s.run(d, r, 40)
				if got.State != manifest.RolloutReverted || len(got.History) != 1 {
					t.Fatalf("rollout with a forged canary status: %s after %d steps (%s), want reverted at the canaries", got.State, len(got.History), got.Reason)
				}
				if sus := strings.Join(got.History[0].Suspect, "; "); !strings.Contains(sus, canary) || !strings.Contains(sus, tc.want) {
					t.Errorf("suspects %q, want %s: %s", sus, canary, tc.want)
				}
				for name, runs := range s.ran {
					for _, p := range runs {
						if p == v3 && name != canary {
							t.Errorf("%s ran the broken build", name)
						}
					}
				}
			})
		}
	})
}

// TestStatusNamingAnotherServer reads status/web-3.json that claims to be
// web-1's: it is refused as inconsistent, and the controller does not
// count web-3 (nor web-1) from it.
func TestStatusNamingAnotherServer(t *testing.T) {
	eachBackend(t, func(t *testing.T, bucket func() string) {
		store, err := blobstore.Open(t.Context(), bucket())
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		if err := store.Put(t.Context(), "status/web-3.json", []byte(`{"server": "web-1", "groups": [{"name": "web"}], "envs": []}`)); err != nil {
			t.Fatal(err)
		}
		if _, err := store.ReadStatus(t.Context(), "web-3"); !errors.Is(err, manifest.ErrInconsistentStatus) || !strings.Contains(err.Error(), "web-1") {
			t.Errorf("ReadStatus(web-3) = %v, want ErrInconsistentStatus naming web-1", err)
		}
		members, err := rollout.BucketMembers(store, time.Now)(t.Context(), "web")
		if err != nil || len(members) != 0 {
			t.Errorf("members of web = %+v, %v: want none", members, err)
		}
	})
}

// TestEmptyGroup checks that a rollout to a group with no members is
// refused unless the strategy allows it, and that one allowed says so in
// every step instead of passing it.
func TestEmptyGroup(t *testing.T) {
	eachBackend(t, func(t *testing.T, bucket func() string) {
		s := newSimAt(t, 0, bucket())
		v1 := deploytest.Build(t, s.store, "hello", 1, nil)
		v2 := deploytest.Build(t, s.store, "hello", 2, nil)
		s.setGroup(v1)
		d := s.driver("pushui-a")
		_, err := d.Start(t.Context(), manifest.RolloutStrategy{Group: "web", Package: v2}, "ann")
		if !errors.Is(err, rollout.ErrStrategy) || !strings.Contains(err.Error(), "group web has no members") {
			t.Fatalf("start on an empty group = %v, want ErrStrategy: group web has no members", err)
		}
		r, err := d.Start(t.Context(), manifest.RolloutStrategy{Group: "web", Package: v2, AllowEmpty: true}, "ann")
		if err != nil {
			t.Fatal(err)
		}
		got := s.run(d, r, 10)
		if got.State != manifest.RolloutSucceeded {
			t.Fatalf("allow_empty rollout: %s (%s)", got.State, got.Reason)
		}
		for i, st := range got.History {
			if st.Outcome != manifest.StepEmpty || st.Hosts != 0 {
				t.Errorf("step %d of an empty group: %s with %d hosts, want empty", i, st.Outcome, st.Hosts)
			}
		}
	})
}

// TestMembersLeave checks that a step that finds no members, where the
// rollout began with some, waits for them and fails at the progress
// deadline: nothing shown to work is not a pass.
func TestMembersLeave(t *testing.T) {
	s := newSim(t, 3)
	v1 := deploytest.Build(t, s.store, "hello", 1, nil)
	v2 := deploytest.Build(t, s.store, "hello", 2, nil)
	s.setGroup(v1)
	d := s.driver("pushui-a")
	r, err := d.Start(t.Context(), manifest.RolloutStrategy{Group: "web", Package: v2, Canary: 0, Steps: []float64{100}}, "ann")
	if err != nil {
		t.Fatal(err)
	}
	s.names = nil // every host left the group
	got := s.run(d, r, 60)
	if got.State != manifest.RolloutFailed || !strings.Contains(got.Reason, "no members") {
		t.Errorf("rollout whose members left: %s (%s), want failed: no members", got.State, got.Reason)
	}
}

// TestWaveWithNoHosts decides a wave whose share holds none of the
// members (canary 0, a 1% step): it is marked skipped, not done.
func TestWaveWithNoHosts(t *testing.T) {
	v1, _ := manifest.ParsePackageName("hello/hello-20261201T120000Z-111111111111.tar.zst")
	v2, _ := manifest.ParsePackageName("hello/hello-20261202T120000Z-222222222222.tar.zst")
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	var members []rollout.Member
	for _, name := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		if manifest.Place("r1", name) >= 1 {
			members = append(members, rollout.Member{Name: name, Status: &manifest.Status{Server: name, Time: now}})
		}
	}
	if len(members) == 0 {
		t.Fatal("no member places above 1: pick other names")
	}
	rec := manifest.RolloutRecord{ID: "r1", Strategy: manifest.RolloutStrategy{Group: "web", Package: v2, Steps: []float64{1, 100}}.WithDefaults(),
		Previous: v1, State: manifest.RolloutRunning, Created: now, Updated: now, History: []manifest.RolloutStep{{Percent: 1, Started: now}}}
	d := rollout.Advance(rec, manifest.Entry{Package: v1}, members, now.Add(time.Second))
	if st := d.Record.History[0]; st.Outcome != manifest.StepSkipped || st.Hosts != 0 {
		t.Errorf("a 1%% wave of no host: %s with %d hosts, want skipped", st.Outcome, st.Hosts)
	}
	if len(d.Record.History) != 2 || d.Record.History[1].Percent != 100 {
		t.Errorf("after the skipped wave: %+v, want the 100%% step", d.Record.History)
	}
}

// TestRevertAfterAbort checks that an aborted rollout can still be
// reverted, bringing every member back to the previous build, but not
// once the group's entry is no longer its own.
func TestRevertAfterAbort(t *testing.T) {
	eachBackend(t, func(t *testing.T, bucket func() string) {
		s := newSimAt(t, 10, bucket())
		ctx := t.Context()
		v1 := deploytest.Build(t, s.store, "hello", 1, nil)
		v2 := deploytest.Build(t, s.store, "hello", 2, nil)
		v3 := deploytest.Build(t, s.store, "hello", 3, nil)
		s.setGroup(v1)
		d := s.driver("pushui-a")
		r, err := d.Start(ctx, manifest.RolloutStrategy{Group: "web", Package: v2, Canary: 2}, "ann")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Command(ctx, blobstore.RefOf(r), rollout.Abort, "ann"); err != nil {
			t.Fatal(err)
		}
		if cmds := rollout.Commands(manifest.RolloutAborted); len(cmds) != 1 || cmds[0] != rollout.Revert {
			t.Errorf("commands of an aborted rollout: %v, want revert", cmds)
		}
		got, err := d.Command(ctx, blobstore.RefOf(r), rollout.Revert, "ann")
		if err != nil || got.State != manifest.RolloutReverted {
			t.Fatalf("revert after abort: %+v, %v", got, err)
		}
		m, _, _ := s.store.ReadManifest(ctx, manifest.Group("web"))
		if e, _ := m.Lookup("hello"); e.Package != v1 || e.Rollout != nil {
			t.Errorf("entry after revert: %+v, want v1 for every member", e)
		}

		// Aborted, then another build deployed: revert would undo it.
		r, err = d.Start(ctx, manifest.RolloutStrategy{Group: "web", Package: v2, Canary: 2}, "ann")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Command(ctx, blobstore.RefOf(r), rollout.Abort, "ann"); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Fleet.Edit(ctx, fleet.Edit{Target: manifest.Group("web"), User: "bob", Action: "v3", Latest: true, Apply: func(m *manifest.Manifest) error {
			m.SetPackage(v3)
			return nil
		}}); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Command(ctx, blobstore.RefOf(r), rollout.Revert, "ann"); !errors.Is(err, rollout.ErrNotActive) {
			t.Errorf("revert of an aborted rollout after another deploy = %v, want ErrNotActive", err)
		}
	})
}

// TestOneStartWins starts two rollouts of one group env at once, from two
// controllers, again and again: each time exactly one is created and the
// other is refused naming it.
func TestOneStartWins(t *testing.T) {
	eachBackend(t, func(t *testing.T, bucket func() string) {
		s := newSimAt(t, 4, bucket())
		ctx := t.Context()
		v1 := deploytest.Build(t, s.store, "hello", 1, nil)
		v2 := deploytest.Build(t, s.store, "hello", 2, nil)
		s.setGroup(v1)
		a, b := s.driver("pushui-a"), s.driver("pushui-b")
		for round := range 8 {
			var wg sync.WaitGroup
			var recs [2]*manifest.RolloutRecord
			var errs [2]error
			start := make(chan struct{})
			for i, d := range []*rollout.Driver{a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					recs[i], errs[i] = d.Start(ctx, manifest.RolloutStrategy{Group: "web", Package: v2, Canary: 1}, "ann")
				}()
			}
			close(start)
			wg.Wait()
			won := 0
			for i := range 2 {
				if errs[i] == nil {
					won = i
				}
			}
			lost := 1 - won
			if errs[won] != nil || !errors.Is(errs[lost], rollout.ErrActive) || !strings.Contains(errs[lost].Error(), recs[won].ID) {
				t.Fatalf("round %d: starts gave %v and %v, want one rollout and ErrActive naming it", round, errs[0], errs[1])
			}
			if refs, _ := s.store.ListRolloutRefs(ctx, "web"); len(refs) != round+1 {
				t.Fatalf("round %d: %d records, want %d", round, len(refs), round+1)
			}
			if _, err := a.Command(ctx, blobstore.RefOf(recs[won]), rollout.Abort, "ann"); err != nil {
				t.Fatal(err)
			}
			s.setGroup(v1)
		}
	})
}

// TestLongDeployIsNotDeath decides a canary whose POST_RESTART runs long:
// its status says DEPLOYING and its heartbeat has gone quiet (a host
// writes none in the middle of an action). It is not failed as silent;
// the healthy deadline judges it.
func TestLongDeployIsNotDeath(t *testing.T) {
	v1, _ := manifest.ParsePackageName("hello/hello-20261201T120000Z-111111111111.tar.zst")
	v2, _ := manifest.ParsePackageName("hello/hello-20261202T120000Z-222222222222.tar.zst")
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	rec := manifest.RolloutRecord{ID: "r1", Strategy: manifest.RolloutStrategy{Group: "web", Package: v2}.WithDefaults(),
		Previous: v1, State: manifest.RolloutRunning, Created: now, Updated: now, History: []manifest.RolloutStep{{Canaries: []string{"a"}, Started: now}}}
	member := func(state manifest.State) []rollout.Member {
		st := &manifest.Status{Server: "a", Time: now, Envs: []manifest.EnvStatus{{Env: "hello", App: "hello", Desired: v2.String(), Serving: v1.String(), State: state,
			Updated: now.Add(time.Second), Source: "group:web", Rollout: "r1"}}}
		return []rollout.Member{{Name: "a", Status: st, Stale: true}}
	}
	if d := rollout.Advance(rec, manifest.Entry{Package: v1}, member(manifest.StateDeploying), now.Add(time.Minute)); d.Record.State != manifest.RolloutRunning || len(d.Record.History[0].Failed) != 0 {
		t.Errorf("a deploying canary a minute in: %s, failed %v; want it still waited for", d.Record.State, d.Record.History[0].Failed)
	}
	if d := rollout.Advance(rec, manifest.Entry{Package: v1}, member(manifest.StateDeploying), now.Add(time.Duration(rec.Strategy.HealthyDeadline)+time.Second)); d.Record.State != manifest.RolloutFailed {
		t.Errorf("a canary deploying past the healthy deadline: %s, want failed", d.Record.State)
	}
	if d := rollout.Advance(rec, manifest.Entry{Package: v1}, member(manifest.StateServing), now.Add(time.Minute)); d.Record.State != manifest.RolloutFailed {
		t.Errorf("a silent canary that is not acting: %s, want failed", d.Record.State)
	}
}
