package pulld_test

import (
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	desired "github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/internal/rollout"
	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/internal/testing/testserver"
	"github.com/pushpull/pushpull/manifest"
)

// fleetRolloutTick is how often the benchmark's controller moves a
// rollout: pushui's default is 5 s (-rollout-tick), which adds up to that
// much per step to the times measured here.
const fleetRolloutTick = time.Second

// fleetRollout is what the rollout benchmark measured in one round: a
// plain group push, a rollout, a stage-first rollout and a broken build.
type fleetRollout struct {
	push, rollout  time.Duration // start → the last host serving
	writes, moves  int64         // group manifest writes and moves of the rollout (its steps and the last, which leaves the plain entry)
	staged, flip   time.Duration // stage-first: start → staged everywhere; the flip → the last host serving
	flipDownloads  int           // package downloads by the hosts after the flip
	broken         time.Duration // the broken build: start → reverted
	brokenRan      int           // hosts that unpacked the broken build
	brokenRequests int64         // the hosts' bucket requests during it
}

// controller returns a rollout driver on the fleet's bucket, as pushui
// runs one: writes through the desired-state path with its group nudge,
// members from the statuses (one listing and the changed statuses per
// tick).
func (f *fleet) controller() *rollout.Driver {
	f.t.Helper()
	if _, err := f.store.WritePushConfig(f.t.Context(), &manifest.PushConfig{Servers: map[string][]string{}, Groups: map[string][]string{fleetGroup: {fleetApp}}}, ""); err != nil {
		f.t.Fatal(err)
	}
	w := desired.New(f.store, desired.Options{Nudger: f.nudger, Logger: slog.New(slog.DiscardHandler), Members: func(string) int { return len(f.hosts) }})
	return &rollout.Driver{Store: f.store, Fleet: w, Holder: "bench", Members: rollout.BucketMembers(f.store, time.Now)}
}

// runRollout starts a rollout of s and ticks it every tick until it ends.
func (f *fleet) runRollout(d *rollout.Driver, tick time.Duration, s manifest.RolloutStrategy, onTick func(*manifest.RolloutRecord)) *manifest.RolloutRecord {
	f.t.Helper()
	r, err := d.Start(f.t.Context(), s, "bench")
	if err != nil {
		f.t.Fatal(err)
	}
	deadline := time.Now().Add(fleetConvergeTimeout)
	for {
		time.Sleep(tick)
		if err := d.Tick(f.t.Context()); err != nil {
			f.t.Fatal(err)
		}
		got, _, err := f.store.ReadRollout(f.t.Context(), blobstore.RolloutRef{Group: fleetGroup, Env: fleetApp, ID: r.ID})
		if err != nil {
			f.t.Fatal(err)
		}
		if onTick != nil {
			onTick(got)
		}
		if !got.State.Active() {
			return got
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("rollout %s still %s after %v: step %d, %s", got.ID, got.State, fleetConvergeTimeout, got.Step, f.describe(f.all()))
		}
	}
}

// revision returns the group manifest's revision.
func (f *fleet) revision() int64 {
	f.t.Helper()
	m, _, err := f.store.ReadManifest(f.t.Context(), manifest.Group(fleetGroup))
	if err != nil {
		f.t.Fatal(err)
	}
	return m.Revision
}

// rolloutRound measures one round: a plain group push (the baseline), a
// rollout with a canary and steps 10/50/100, a stage-first one, and a
// broken build with canary 1, max_failures 0 and auto_revert, which must
// be run by exactly one host and reverted.
func (f *fleet) rolloutRound(d *rollout.Driver, tick time.Duration) fleetRollout {
	f.t.Helper()
	var r fleetRollout
	push := f.push(f.release(), fleetConvergeTimeout)
	r.push = slices.Max(push.lat)

	strategy := func(p manifest.PackageName) manifest.RolloutStrategy {
		return manifest.RolloutStrategy{Group: fleetGroup, Package: p, Canary: 1, Steps: []float64{10, 50, 100}}
	}
	p := f.release()
	rev := f.revision()
	start := time.Now()
	rec := f.runRollout(d, tick, strategy(p), nil)
	if rec.State != manifest.RolloutSucceeded {
		f.t.Fatalf("rollout: %s (%s)", rec.State, rec.Reason)
	}
	lat, pending := f.waitServed(f.all(), p, start, fleetConvergeTimeout)
	if len(pending) > 0 {
		f.t.Fatalf("rollout: %d hosts not serving %s", len(pending), p)
	}
	r.rollout, r.writes, r.moves = slices.Max(lat), f.revision()-rev, int64(len(rec.History)+1)

	p = f.release()
	s := strategy(p)
	s.StageFirst = true
	start = time.Now()
	var flipAt time.Time
	var flipLog int
	rec = f.runRollout(d, tick, s, func(got *manifest.RolloutRecord) {
		if flipAt.IsZero() && !got.Staging {
			flipAt, flipLog = got.History[0].Ended, len(f.px.Log())
		}
	})
	if rec.State != manifest.RolloutSucceeded {
		f.t.Fatalf("stage-first rollout: %s (%s)", rec.State, rec.Reason)
	}
	lat, pending = f.waitServed(f.all(), p, flipAt, fleetConvergeTimeout)
	if len(pending) > 0 {
		f.t.Fatalf("stage-first rollout: %d hosts not serving %s", len(pending), p)
	}
	r.staged, r.flip = flipAt.Sub(start), slices.Max(lat)
	for _, req := range f.px.Log()[flipLog:] {
		if strings.HasPrefix(req, "GET ") && strings.HasSuffix(req, "/"+p.File()) {
			r.flipDownloads++
		}
	}

	prev := p
	broken := f.releaseFiles(map[string]string{"version.txt": "broken\n", "teletraan/RESTARTING": "#!/bin/sh\nexit 1\n"})
	s = strategy(broken)
	s.MaxFailures, s.AutoRevert = manifest.Quota{N: 0}, true
	before := f.px.Counts().Requests
	start = time.Now()
	rec = f.runRollout(d, tick, s, nil)
	r.broken = time.Since(start)
	r.brokenRequests = f.px.Counts().Requests - before
	if rec.State != manifest.RolloutReverted {
		f.t.Fatalf("broken build: %s (%s), want reverted", rec.State, rec.Reason)
	}
	for _, h := range f.hosts {
		if m, _ := filepath.Glob(filepath.Join(h.root, "envs", fleetApp, "builds", broken.ID())); len(m) > 0 {
			r.brokenRan++
		}
	}
	if r.brokenRan != 1 {
		f.t.Fatalf("%d hosts ran the broken build, want exactly its canary", r.brokenRan)
	}
	f.verifyStatuses(prev)
	return r
}

// releaseFiles releases the next build of the fleet's app with files.
func (f *fleet) releaseFiles(files map[string]string) manifest.PackageName {
	f.t.Helper()
	f.seq++
	return deploytest.Build(f.t, f.store, fleetApp, f.seq, files)
}

// BenchmarkFleetRollout measures rollouts on the fleet of BenchmarkFleet
// (PUSHPULL_FLEET_HOSTS, default 1000, one group, per-server and group
// topics, poll 1 h, rollout heartbeat 10 s): each round runs a plain group
// push (the baseline) and then a rollout of the next build with a canary
// and steps 10/50/100 and min_healthy_time 0, driven every second (pushui
// drives every 5 s by default) by a controller reading the statuses from
// the bucket.
//
// Metrics: push-s and rollout-s (start → the last host serving) and their
// ratio; writes/step (group manifest writes per move of the rollout, its
// steps and the last one that leaves the plain entry: one); staged-s and
// flip-s of a stage_first rollout (start → every member staged; the flip →
// the last host serving) with flip/rollout (flip-s over rollout-s) and
// flip-downloads (package downloads after the flip: none); broken-s (a
// build whose RESTARTING fails, with canary 1, max_failures 0 and
// auto_revert: start → reverted), broken-hosts (hosts that ran it: one)
// and broken-requests/host.
func BenchmarkFleetRollout(b *testing.B) {
	n := fleetHosts(b)
	raiseNoFile(b, n)
	s3 := testserver.StartS3(b)
	s3.Setenv(b)
	f := newFleet(b, s3, fleetOptions{hosts: n, topics: perServerTopics, group: true, poll: time.Hour})
	f.setup(f.release())
	d := f.controller()
	var rounds []fleetRollout
	for b.Loop() {
		rounds = append(rounds, f.rolloutRound(d, fleetRolloutTick))
	}
	reportRollouts(b, rounds, n)
}

func reportRollouts(b *testing.B, rounds []fleetRollout, n int) {
	var push, roll, writes, moves, staged, flip, downloads, broken, ran, reqs float64
	for _, r := range rounds {
		push += r.push.Seconds()
		roll += r.rollout.Seconds()
		writes += float64(r.writes)
		moves += float64(r.moves)
		staged += r.staged.Seconds()
		flip += r.flip.Seconds()
		downloads += float64(r.flipDownloads)
		broken += r.broken.Seconds()
		ran += float64(r.brokenRan)
		reqs += float64(r.brokenRequests)
	}
	k := float64(len(rounds))
	b.ReportMetric(push/k, "push-s")
	b.ReportMetric(roll/k, "rollout-s")
	b.ReportMetric(roll/push, "rollout/push")
	b.ReportMetric(writes/moves, "writes/step")
	b.ReportMetric(staged/k, "staged-s")
	b.ReportMetric(flip/k, "flip-s")
	b.ReportMetric(flip/roll, "flip/rollout")
	b.ReportMetric(downloads/k, "flip-downloads")
	b.ReportMetric(broken/k, "broken-s")
	b.ReportMetric(ran/k, "broken-hosts")
	b.ReportMetric(reqs/k/float64(n), "broken-requests/host")
	b.ReportMetric(0, "ns/op")
}

// TestFleetRolloutSmall runs BenchmarkFleetRollout's round on 12 hosts:
// every rollout ends as it must, a step is one write, the flip of a
// stage-first rollout downloads nothing, and the broken build is run by
// its canary alone.
func TestFleetRolloutSmall(t *testing.T) {
	s3 := testserver.StartS3(t)
	s3.Setenv(t)
	f := newFleet(t, s3, fleetOptions{hosts: 12, topics: perServerTopics, group: true, poll: time.Hour})
	f.setup(f.release())
	r := f.rolloutRound(f.controller(), 200*time.Millisecond)
	if r.writes != r.moves {
		t.Errorf("the rollout wrote the group manifest %d times in %d moves, want one write per move", r.writes, r.moves)
	}
	if r.flipDownloads != 0 {
		t.Errorf("%d package downloads after the flip of a stage-first rollout, want none", r.flipDownloads)
	}
	t.Logf("push %v, rollout %v (%d moves), staged %v, flip %v, broken %v", r.push, r.rollout, r.moves, r.staged, r.flip, r.broken)
}
