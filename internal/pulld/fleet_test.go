package pulld_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gocloud.dev/pubsub"
	_ "gocloud.dev/pubsub/mempubsub"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/nudge"
	"github.com/pushpull/pushpull/internal/pulld"
	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/internal/testing/pulldtest"
	"github.com/pushpull/pushpull/internal/testing/testserver"
	"github.com/pushpull/pushpull/manifest"
)

// The fleet: many pulld reconcilers (pulld.Run, each with its own root,
// server name and logger) in this process, sharing one S3 test server
// behind pulldtest's counting proxy, driven by a pusher that writes their
// manifests straight to the server (its requests are not counted).
const (
	// fleetHostsEnv overrides the benchmark's number of hosts
	// (PUSHPULL_FLEET_HOSTS=50 for a quick run).
	fleetHostsEnv     = "PUSHPULL_FLEET_HOSTS"
	fleetDefaultHosts = 1000
	// fleetApp is the app (and env) every host runs.
	fleetApp = "fleet"
	// fleetGroup is the group of a fleet with fleetOptions.group.
	fleetGroup = "all"
	// fleetSource is the nudge source name pulld gives a mem:// pub/sub
	// subscription, shared or per server, as the reconcile it starts is
	// logged.
	fleetSource = "pubsub-mem"
	// fleetWorkers bounds the pusher's concurrent bucket requests and
	// publishes.
	fleetWorkers = 32
	// fleetPoll is the poll period of the poll sub-benchmark: the defaults
	// (poll 5 min, heartbeat 30 min) scaled down fleetScale times, so that
	// a push converges in about 1.2 poll periods (12 s) and the idle window
	// that must hold one heartbeat per host lasts about a minute.
	fleetPoll      = 10 * time.Second
	fleetScale     = int(pulld.DefaultPoll / fleetPoll)
	fleetHeartbeat = pulld.DefaultHeartbeat / time.Duration(fleetScale)
	// Bounds, so that a broken fleet fails instead of hanging.
	fleetSetupTimeout    = 3 * time.Minute
	fleetConvergeTimeout = 2 * time.Minute
	fleetStatusTimeout   = 30 * time.Second
	fleetStopTimeout     = time.Minute
)

// fleetTopics is how a fleet is nudged through pub/sub.
type fleetTopics int

const (
	// noTopics: no pub/sub; the hosts poll.
	noTopics fleetTopics = iota
	// sharedTopic: one mem:// topic for the fleet, every host subscribed
	// to it, so that each receives every host's message.
	sharedTopic
	// perServerTopics: a mem:// topic per host, the pusher's topic URL and
	// every host's -nudge the same template with {server}, so that each
	// host receives its own message only.
	perServerTopics
)

type fleetOptions struct {
	hosts  int
	topics fleetTopics
	// group puts every host in group fleetGroup, with no manifest of its
	// own: a push is one write of the group's manifest and one message on
	// the group's topic.
	group           bool
	poll, heartbeat time.Duration // 0: pulld's defaults
	// stagger starts each host at a random moment within one poll period,
	// so that polls are spread over the period as in a fleet that has run
	// for a while, rather than bunched as after a reboot of all hosts.
	stagger bool
}

type fleet struct {
	t        testing.TB
	opts     fleetOptions
	px       *deploytest.Proxy
	store    *blobstore.Store // the pusher's, straight to the server
	hostURL  string           // the hosts' bucket URL, through px
	topicURL string           // the pusher's topic URL and the hosts' -nudge, maybe a template
	nudger   *nudge.Nudger    // the pusher's (internal/nudge, as pushui's); nil without pub/sub
	hosts    []*fleetHost
	changed  chan struct{} // 1-buffered: some host served a package or exited
	seq      int           // builds released so far
	writes   atomic.Int64  // manifest writes by the pusher
}

type fleetHost struct {
	name string
	root string
	tr   *pulldtest.Tracker
	err  atomic.Pointer[error] // set when pulld.Run returned while the fleet runs
}

// newFleet prepares a fleet on a fresh bucket of s3; start runs it.
func newFleet(t testing.TB, s3 *testserver.S3, opts fleetOptions) *fleet {
	t.Helper()
	direct := s3.Bucket(t, "")
	px := deploytest.StartProxy(t, s3.Endpoint)
	store, err := blobstore.Open(t.Context(), direct)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &fleet{
		t:       t,
		opts:    opts,
		px:      px,
		store:   store,
		hostURL: strings.Replace(direct, s3.Endpoint, px.URL, 1),
		changed: make(chan struct{}, 1),
	}
	notify := func() {
		select {
		case f.changed <- struct{}{}:
		default:
		}
	}
	for i := range opts.hosts {
		f.hosts = append(f.hosts, &fleetHost{
			name: fmt.Sprintf("fleet-%04d", i+1),
			root: t.TempDir(),
			tr:   pulldtest.NewTracker(notify),
		})
	}
	if opts.topics != noTopics {
		f.openTopics()
	}
	return f
}

// openTopics makes the fleet's mem:// topics and the pusher's Nudger. The
// topics are opened here because a mem:// subscription can only be opened
// to a topic that exists (a NATS subject needs no creation); the Nudger's
// OpenTopic of the same URL returns the same topic.
func (f *fleet) openTopics() {
	f.t.Helper()
	f.topicURL = fmt.Sprintf("mem://pulld-fleet-%d", time.Now().UnixNano())
	urls := []string{f.topicURL}
	if f.opts.topics == perServerTopics {
		urls = nil
		for _, h := range f.hosts {
			urls = append(urls, f.topicURL+"-"+h.name)
		}
		if f.opts.group {
			urls = append(urls, f.topicURL+"-"+nudge.Address(manifest.Group(fleetGroup)))
		}
		f.topicURL += "-{server}"
	}
	for _, u := range urls {
		topic, err := pubsub.OpenTopic(f.t.Context(), u)
		if err != nil {
			f.t.Fatal(err)
		}
		f.t.Cleanup(func() { topic.Shutdown(context.Background()) })
	}
	n, err := nudge.New(f.t.Context(), nudge.Config{Topic: f.topicURL})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			f.t.Errorf("close the nudger: %v", err)
		}
	})
	f.nudger = n
}

// release builds the next version of the fleet's app into the bucket.
func (f *fleet) release() manifest.PackageName {
	f.t.Helper()
	f.seq++
	return deploytest.Build(f.t, f.store, fleetApp, f.seq, pulldtest.FleetApp("v"+strconv.Itoa(f.seq)))
}

// start runs every host's pulld; they are stopped (as by SIGTERM) and
// waited for when the test ends.
func (f *fleet) start() {
	// pkginstall saves state.json with renameio.WriteFile, which first
	// probes os.TempDir() (create a file there, rename it beside the
	// destination) and then stages the file in os.TempDir() when the probe
	// succeeds. A real host has one pulld; here a thousand would all create,
	// rename and remove files in /tmp at once, and the kernel's lock on that
	// one directory took more CPU than everything else of a push. With
	// TMPDIR pointing nowhere the probe fails at once and each host stages
	// its state in its own root, as on a host whose /tmp is a tmpfs. The
	// roots exist already, so t.TempDir is not needed after this.
	f.t.Setenv("TMPDIR", filepath.Join(f.hosts[0].root, "no-such-dir"))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, h := range f.hosts {
		cfg := pulld.Config{
			Bucket:      f.hostURL,
			Server:      h.name,
			Root:        h.root,
			Poll:        f.opts.poll,
			Heartbeat:   f.opts.heartbeat,
			StepTimeout: 30 * time.Second,
			Grace:       5 * time.Second,
			RetryMin:    time.Second,
			RetryMax:    10 * time.Second,
			Logger:      slog.New(h.tr),
		}
		if f.nudger != nil {
			cfg.Nudge = []string{f.topicURL}
		}
		if f.opts.group {
			cfg.Groups = []string{fleetGroup}
		}
		wg.Go(func() {
			if f.opts.stagger {
				select {
				case <-time.After(rand.N(cfg.Poll)):
				case <-ctx.Done():
					return
				}
			}
			err := pulld.Run(ctx, cfg)
			if ctx.Err() == nil {
				if err == nil {
					err = errors.New("returned early")
				}
				h.err.Store(&err)
				select {
				case f.changed <- struct{}{}:
				default:
				}
			} else if err != nil {
				f.t.Errorf("%s: pulld.Run: %v", h.name, err)
			}
		})
	}
	f.t.Cleanup(func() {
		cancel()
		done := make(chan struct{})
		go func() {
			wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(fleetStopTimeout):
			f.t.Errorf("pulld.Run of some hosts did not return within %v of the cancel", fleetStopTimeout)
		}
	})
}

// forEach runs fn for every host with index in idx, fleetWorkers at a
// time, and returns the first error.
func (f *fleet) forEach(idx []int, fn func(h *fleetHost) error) error {
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	work := make(chan *fleetHost)
	for range min(fleetWorkers, len(idx)) {
		wg.Go(func() {
			for h := range work {
				if err := fn(h); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("%s: %w", h.name, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, i := range idx {
		work <- f.hosts[i]
	}
	close(work)
	wg.Wait()
	return first
}

// all returns the indices of every host.
func (f *fleet) all() []int {
	idx := make([]int, len(f.hosts))
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// setManifests points every host's manifest at p, as pushui does (a read
// and a conditional write per server), or, for a group fleet, the group's
// manifest: one read and one write.
func (f *fleet) setManifests(p manifest.PackageName) {
	f.t.Helper()
	set := func(t manifest.Target) error {
		u, err := f.store.UpdateManifest(context.Background(), t, func(m *manifest.Manifest, _ bool) error {
			m.Packages = []manifest.Entry{{Package: p}}
			return nil
		})
		if u.Changed {
			f.writes.Add(1)
		}
		return err
	}
	var err error
	if f.opts.group {
		err = set(manifest.Group(fleetGroup))
	} else {
		err = f.forEach(f.all(), func(h *fleetHost) error { return set(manifest.Server(h.name)) })
	}
	if err != nil {
		f.t.Fatalf("write manifests: %v", err)
	}
}

// nudge nudges every host of idx through the Nudger: one message per host,
// whose body is its name, on the shared topic or on the host's own; for a
// group fleet, one message for the group.
func (f *fleet) nudge(idx []int) {
	f.t.Helper()
	if f.opts.group {
		if err := f.nudger.NudgeGroup(context.Background(), fleetGroup, len(f.hosts)); err != nil {
			f.t.Fatalf("nudge: %v", err)
		}
		return
	}
	names := make([]string, len(idx))
	for n, i := range idx {
		names[n] = f.hosts[i].name
	}
	if err := f.nudger.Nudge(context.Background(), names...); err != nil {
		f.t.Fatalf("nudge: %v", err)
	}
}

// waitServed waits up to d until every host of idx has served p, and
// returns, per host of idx, how long after since it did, and the hosts
// that had not when d ran out. A host whose pulld.Run returned fails the
// test.
func (f *fleet) waitServed(idx []int, p manifest.PackageName, since time.Time, d time.Duration) (lat []time.Duration, pending []int) {
	f.t.Helper()
	want := p.String()
	at := make(map[int]time.Duration, len(idx))
	pending = slices.Clone(idx)
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		keep := pending[:0]
		for _, i := range pending {
			h := f.hosts[i]
			if s, ok := h.tr.Served(want); ok {
				at[i] = s.At.Sub(since)
			} else if err := h.err.Load(); err != nil {
				f.t.Fatalf("%s: pulld.Run: %v; last problems: %q", h.name, *err, h.tr.Problems())
			} else {
				keep = append(keep, i)
			}
		}
		pending = keep
		if len(pending) == 0 {
			break
		}
		timedOut := false
		select {
		case <-f.changed:
		case <-deadline.C:
			timedOut = true
		}
		if timedOut {
			break
		}
	}
	for _, i := range idx {
		if d, ok := at[i]; ok {
			lat = append(lat, d)
		}
	}
	return lat, pending
}

// describe says what the first few hosts of idx are doing, for a failure.
func (f *fleet) describe(idx []int) string {
	var b strings.Builder
	for n, i := range idx {
		if n == 5 {
			fmt.Fprintf(&b, "\n… and %d more", len(idx)-n)
			break
		}
		h := f.hosts[i]
		fmt.Fprintf(&b, "\n%s: reconciles %v, problems %q", h.name, h.tr.Triggers(), h.tr.Problems())
	}
	return b.String()
}

// verifyStatuses checks that every host's status in the bucket shows p
// serving, waiting up to fleetStatusTimeout for the writes that follow
// pkginstall's.
func (f *fleet) verifyStatuses(p manifest.PackageName) {
	f.t.Helper()
	ok := pulldtest.EnvIs(fleetApp, manifest.StateServing, p.String())
	pending := f.all()
	deadline := time.Now().Add(fleetStatusTimeout)
	for {
		var mu sync.Mutex
		var keep []int
		var last string
		f.forEach(pending, func(h *fleetHost) error {
			st, err := f.store.ReadStatus(context.Background(), h.name)
			if err == nil && ok(st) {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			keep = append(keep, slices.Index(f.hosts, h))
			if err != nil {
				last = fmt.Sprintf("%s: %v", h.name, err)
			} else {
				last = fmt.Sprintf("%s: %s", h.name, pulldtest.Describe(st))
			}
			return nil
		})
		if pending = keep; len(pending) == 0 {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%d hosts' status does not show %s serving after %v; last: %s%s",
				len(pending), p, fleetStatusTimeout, last, f.describe(pending))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// setup points every manifest at p, starts the hosts and waits until all
// of them serve p. With pub/sub (poll 1 h) the hosts are nudged, again
// every few seconds for those that have not acted yet.
func (f *fleet) setup(p manifest.PackageName) {
	f.t.Helper()
	f.setManifests(p)
	f.start()
	since := time.Now()
	deadline := since.Add(fleetSetupTimeout)
	pending := f.all()
	for len(pending) > 0 {
		wait := time.Until(deadline)
		if f.nudger != nil {
			f.waitStarted(deadline)
			f.nudge(pending)
			wait = min(wait, 5*time.Second)
		}
		_, pending = f.waitServed(pending, p, since, wait)
		if len(pending) > 0 && time.Now().After(deadline) {
			f.t.Fatalf("setup: %d of %d hosts not serving %s after %v%s",
				len(pending), len(f.hosts), p, fleetSetupTimeout, f.describe(pending))
		}
	}
	f.verifyStatuses(p)
	// Let the last status writes and nudges pass.
	time.Sleep(time.Second)
}

// waitStarted waits until every host has logged that it started (its
// nudge sources are then being opened), plus a moment for them to open.
func (f *fleet) waitStarted(deadline time.Time) {
	f.t.Helper()
	for _, h := range f.hosts {
		for !h.tr.Started() {
			if time.Now().After(deadline) {
				f.t.Fatalf("%s did not start", h.name)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	time.Sleep(200 * time.Millisecond)
}

// fleetPush is what one push measured.
type fleetPush struct {
	push     time.Duration   // writing the manifests (and publishing)
	lat      []time.Duration // per host: push start → serving
	requests int64           // bucket requests of the hosts from the push until all served
	busy     float64         // fraction of the machine's CPU time busy from the push until all served, -1 unknown
	writes   int64           // manifest writes by the pusher
}

// cpuTimes returns the machine's busy and total CPU time so far, in
// clock ticks, from /proc/stat; ok is false where there is none.
func cpuTimes() (busy, total int64, ok bool) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0, false
	}
	for i, s := range fields[1:] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total, true
}

// push points every manifest at p (and, with pub/sub, publishes one nudge
// per host after all manifests are written) and waits until every host
// serves p. Times are from the start of the push, taken when pkginstall
// recorded p serving (Tracker); each host's status in the bucket is checked
// afterwards.
func (f *fleet) push(p manifest.PackageName, timeout time.Duration) fleetPush {
	f.t.Helper()
	before := f.px.Counts().Requests
	writes := f.writes.Load()
	busy0, total0, cpuOK := cpuTimes()
	start := time.Now()
	f.setManifests(p)
	if f.nudger != nil {
		f.nudge(f.all())
	}
	r := fleetPush{push: time.Since(start)}
	var pending []int
	r.lat, pending = f.waitServed(f.all(), p, start, timeout)
	if len(pending) > 0 {
		f.t.Fatalf("push: %d of %d hosts not serving %s after %v%s",
			len(pending), len(f.hosts), p, timeout, f.describe(pending))
	}
	r.requests = f.px.Counts().Requests - before
	r.writes = f.writes.Load() - writes
	r.busy = -1
	if busy1, total1, ok := cpuTimes(); cpuOK && ok && total1 > total0 {
		r.busy = float64(busy1-busy0) / float64(total1-total0)
	}
	f.verifyStatuses(p)
	return r
}

// fleetHosts returns the benchmark's number of hosts.
func fleetHosts(b *testing.B) int {
	s := os.Getenv(fleetHostsEnv)
	if s == "" {
		return fleetDefaultHosts
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number of hosts", fleetHostsEnv, s)
	}
	return n
}

// raiseNoFile raises the soft limit on open files to the hard one, and
// warns when it looks too low for n hosts: each holds its root's lock and
// keeps a connection or two to the proxy, which holds the other ends and
// its own to the server, and a deploy adds pipes for its script.
func raiseNoFile(b *testing.B, n int) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		b.Logf("getrlimit: %v", err)
		return
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			b.Logf("setrlimit: %v", err)
		}
	}
	if need := uint64(8*n + 1024); rl.Cur < need {
		b.Logf("RLIMIT_NOFILE is %d; %d hosts may need about %d", rl.Cur, n, need)
	}
}

// seconds returns the p-quantile of sorted durations, in seconds.
func seconds(sorted []time.Duration, p float64) float64 {
	return sorted[int(p*float64(len(sorted)-1))].Seconds()
}

// BenchmarkFleet measures a push to a fleet of simulated hosts
// (PUSHPULL_FLEET_HOSTS, default 1000): pulld reconcilers in this process,
// each with its own root, sharing one S3 test server (versitygw). Every
// host first serves v1 (not measured); each iteration then releases the
// next build, points every manifest at it and waits until every host
// serves it. The app has a single script (RESTARTING, one fork).
//
//   - pubsub: poll period 1 h; after writing all the manifests, the pusher
//     (internal/nudge, as pushui and release) publishes one message per
//     server (body = server name) on one mem:// topic every host subscribes
//     to. Each host receives every message: n² deliveries per push.
//   - pubsub-per-server: the same with a topic per server: the pusher's
//     topic URL and every host's -nudge are one template with {server}, so
//     each host receives its own message only: n deliveries per push.
//   - poll: no nudges; poll every 10 s ±20%, heartbeat 1 min (the defaults
//     scaled down 30×), hosts started at random moments over a poll period
//     so that their polls are spread.
//
// Metrics: s-to-all (push start → the last host serving), p50-s and p99-s
// (push start → each host serving), push-s (writing the manifests and
// publishing), requests/host/push (the hosts' bucket requests from the
// push until all serve); for poll also periods-to-all (s-to-all in poll
// periods) and requests/host/idle-h. cpu-busy is the fraction of the
// machine's CPU time (all cores, every process: the hosts, their scripts,
// the S3 server, and anything else running) that was busy from the push
// until all served: near 1, the push was bound by this machine's CPU,
// which a real fleet's hosts do not share. "Serving" is when pkginstall recorded
// it, as pulld logged it; the status write follows, and every host's status
// in the bucket is checked after each push.
func BenchmarkFleet(b *testing.B) {
	n := fleetHosts(b)
	raiseNoFile(b, n)
	s3 := testserver.StartS3(b)
	s3.Setenv(b)

	report := func(b *testing.B, pushes []fleetPush) {
		var lat []time.Duration
		var toAll, push, reqs, busy, writes float64
		for _, p := range pushes {
			lat = append(lat, p.lat...)
			toAll += slices.Max(p.lat).Seconds()
			push += p.push.Seconds()
			reqs += float64(p.requests)
			busy += p.busy
			writes += float64(p.writes)
		}
		slices.Sort(lat)
		k := float64(len(pushes))
		b.ReportMetric(toAll/k, "s-to-all")
		b.ReportMetric(seconds(lat, 0.5), "p50-s")
		b.ReportMetric(seconds(lat, 0.99), "p99-s")
		b.ReportMetric(push/k, "push-s")
		b.ReportMetric(writes/k, "writes/push")
		b.ReportMetric(reqs/k/float64(n), "requests/host/push")
		if busy >= 0 {
			b.ReportMetric(busy/k, "cpu-busy")
		}
		b.ReportMetric(0, "ns/op")
	}

	for _, mode := range fleetPubSubModes {
		b.Run(mode.name, func(b *testing.B) {
			f := newFleet(b, s3, fleetOptions{hosts: n, topics: mode.topics, group: mode.group, poll: time.Hour})
			f.setup(f.release())
			var pushes []fleetPush
			for b.Loop() {
				pushes = append(pushes, f.push(f.release(), fleetConvergeTimeout))
			}
			report(b, pushes)
		})
	}

	b.Run("poll", func(b *testing.B) {
		f := newFleet(b, s3, fleetOptions{hosts: n, poll: fleetPoll, heartbeat: fleetHeartbeat, stagger: true})
		f.setup(f.release())
		var pushes []fleetPush
		for b.Loop() {
			pushes = append(pushes, f.push(f.release(), fleetPoll*6/5+fleetConvergeTimeout))
		}
		report(b, pushes)
		var toAll float64
		for _, p := range pushes {
			toAll += slices.Max(p.lat).Seconds()
		}
		b.ReportMetric(toAll/float64(len(pushes))/fleetPoll.Seconds(), "periods-to-all")

		// The idle cost: every request the hosts make over one heartbeat
		// period plus one poll period after the push has settled, divided
		// by the hosts and by the hours that window stands for at the
		// default periods (its length × fleetScale, as poll and heartbeat
		// are both scaled down fleetScale times: 70 s stand for 35 min).
		// The window holds about 7 polls per host (one per poll period,
		// their phases spread) and one heartbeat status write per host
		// (each writes one at its first poll at least a heartbeat period
		// after its last write, which was at the push), so it counts
		// heartbeats at one per 70 s where the steady rate is about one per
		// heartbeat plus half a poll period (65 s): the figure is low by
		// about 0.1 request/h.
		time.Sleep(2 * time.Second)
		before, logBefore := f.px.Counts(), len(f.px.Log())
		start := time.Now()
		time.Sleep(fleetHeartbeat + fleetPoll)
		elapsed := time.Since(start)
		after, log := f.px.Counts(), f.px.Log()[logBefore:]
		hours := elapsed.Hours() * float64(fleetScale)
		b.ReportMetric(float64(after.Requests-before.Requests)/float64(n)/hours, "requests/host/idle-h")
		kinds := map[string]int{}
		for _, req := range log {
			method, path, _ := strings.Cut(req, " ")
			kinds[method+" "+filepath.Base(filepath.Dir(path))+"/"]++
		}
		b.Logf("idle window %v (%.2f simulated h): %d requests from %d hosts: %v",
			elapsed.Round(time.Millisecond), hours, after.Requests-before.Requests, n, kinds)
	})
}

// fleetPubSubModes are BenchmarkFleet's and TestFleetSmall's pub/sub
// sub-benchmarks and subtests.
var fleetPubSubModes = []struct {
	name   string
	topics fleetTopics
	group  bool
	source string // the nudge source pulld names for the push's reconcile
}{
	{"pubsub", sharedTopic, false, fleetSource},
	{"pubsub-per-server", perServerTopics, false, fleetSource},
	{"group", perServerTopics, true, fleetSource + "-" + "group-" + fleetGroup},
}

// TestFleetSmall runs the fleet of BenchmarkFleet with 20 hosts and pub/sub
// nudges (poll 1 h), on a shared topic and on per-server topics: after a
// push every host serves v2, its status says so, its RESTARTING script ran,
// and the reconcile that deployed it was started by its nudge, not by a
// poll. With per-server topics that nudge can only have come through the
// host's own topic, whose URL pulld expanded from the template.
func TestFleetSmall(t *testing.T) {
	s3 := testserver.StartS3(t)
	s3.Setenv(t)
	for _, mode := range fleetPubSubModes {
		t.Run(mode.name, func(t *testing.T) { testFleetSmall(t, s3, mode.topics, mode.group, mode.source) })
	}
}

func testFleetSmall(t *testing.T, s3 *testserver.S3, topics fleetTopics, group bool, source string) {
	f := newFleet(t, s3, fleetOptions{hosts: 20, topics: topics, group: group, poll: time.Hour})
	f.setup(f.release())
	polls := make([]int, len(f.hosts))
	for i, h := range f.hosts {
		polls[i] = h.tr.Triggers()["poll"]
	}
	v2 := f.release()
	r := f.push(v2, 15*time.Second)
	if len(r.lat) != len(f.hosts) {
		t.Fatalf("%d latencies for %d hosts", len(r.lat), len(f.hosts))
	}
	if want := map[bool]int64{true: 1, false: int64(len(f.hosts))}[group]; r.writes != want {
		t.Errorf("the push wrote %d manifests, want %d", r.writes, want)
	}
	for i, h := range f.hosts {
		s, _ := h.tr.Served(v2.String())
		if s.Trigger != source {
			t.Errorf("%s: v2 deployed by a reconcile started by %q, want %q", h.name, s.Trigger, source)
		}
		if got := h.tr.Triggers()["poll"]; got != polls[i] {
			t.Errorf("%s: %d polls during the push (poll period 1 h)", h.name, got-polls[i])
		}
		mark, err := os.ReadFile(filepath.Join(h.root, "envs", fleetApp, pulldtest.FleetMarkFile))
		if err != nil || strings.TrimSpace(string(mark)) != v2.File() {
			t.Errorf("%s: RESTARTING wrote %q (%v), want %q", h.name, mark, err, v2.File())
		}
	}
	slices.Sort(r.lat)
	t.Logf("%d hosts: push %v, all serving after %v (p50 %v)", len(f.hosts),
		r.push.Round(time.Millisecond), r.lat[len(r.lat)-1].Round(time.Millisecond), r.lat[len(r.lat)/2].Round(time.Millisecond))
}
