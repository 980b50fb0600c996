package pulld

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	systemd "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/time/rate"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/backoff"
	"github.com/pushpull/pushpull/internal/cli"
	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/internal/nudge"
	"github.com/pushpull/pushpull/manifest"
)

// Timeouts of pulld's own operations.
const (
	// bucketTimeout bounds one manifest read or status write.
	bucketTimeout = time.Minute
	// finalTimeout bounds the status write and HTTP shutdown on exit.
	finalTimeout = 10 * time.Second
	// watchExitTimeout bounds the wait for nudge sources to end on exit.
	watchExitTimeout = 2 * time.Second
	// errRetryMin is the first delay after a failed manifest read; later
	// ones double up to the poll period.
	errRetryMin = 2 * time.Second
)

// Nudges start reconciles at once, but at most nudgeRate per second after a
// burst of nudgeBurst, so a flood of POST /nudge cannot make pulld hammer
// the bucket.
const (
	nudgeRate  = 5
	nudgeBurst = 5
)

// Nudge sources, as named in logs, metrics and /healthz (besides those of
// -nudge: "gce" and "pubsub-{scheme}").
const (
	sourceSignal = "sighup"
	sourceHTTP   = "http"
	sourceHealth = "health" // an env's health flipped: write status
	sourceFile   = "file"
)

// daemon is one pulld: its configuration, bucket, engine and the state of
// its reconcile loop. The loop's fields are touched only by the goroutine
// running Run; what HTTP handlers read is published through atomics and
// d.mu.
type daemon struct {
	cfg   Config
	log   *slog.Logger
	store *blobstore.Store
	eng   engine
	met   *metrics
	host  manifest.HostInfo
	live  liveness
	sd    notifier

	nudges  chan string   // 1-buffered: a nudge during a reconcile is kept for the next one
	limiter *rate.Limiter // spaces nudge-triggered reconciles

	// Published for HTTP handlers.
	current atomic.Pointer[manifest.Status]
	mu      sync.Mutex
	sources map[string]bool // nudge source → established

	// Loop state.
	docs          []*document      // the server's manifest, then its groups'
	desired       manifest.Desired // what the documents last merged to
	manifestErr   string           // why the manifest is not acted on, for status
	bucketFails   int              // consecutive failed manifest reads
	envs          map[string]*envRecord
	selfUpdated   bool          // pulld's own package changed this cycle
	lastWrite     time.Time     // last successful status write
	statusTimeout time.Duration // bounds one status write
	lastDoc       []byte        // status last written, Time zeroed, to skip unchanged writes
	acting        acting        // the action act is running
	health        *health       // the envs' health checks; nil outside daemon mode
}

// newDaemon builds a daemon on an open store and engine.
func newDaemon(cfg Config, store *blobstore.Store, eng engine, host manifest.HostInfo) *daemon {
	d := &daemon{
		cfg:           cfg,
		log:           cfg.Logger,
		store:         store,
		eng:           eng,
		met:           newMetrics(version()),
		host:          host,
		sd:            notifier{log: cfg.Logger},
		nudges:        make(chan string, 1),
		limiter:       rate.NewLimiter(nudgeRate, nudgeBurst),
		sources:       map[string]bool{},
		envs:          map[string]*envRecord{},
		docs:          newDocuments(cfg.Server, cfg.Groups),
		statusTimeout: bucketTimeout,
	}
	d.seedInstalled()
	d.publish()
	return d
}

// seedInstalled records the envs pkginstall has in service, so status
// shows them before the first manifest is read.
func (d *daemon) seedInstalled() {
	installed, err := d.eng.Installed()
	if err != nil {
		d.log.Error("list installed envs failed", "err", err)
		return
	}
	for _, ie := range installed {
		rec := d.record(ie.Env, ie.Package.App)
		rec.status.Serving, rec.status.State, rec.status.Step = ie.Package.String(), ie.State, ie.Step
		rec.status.Updated, rec.status.DeployID = ie.Updated, ie.DeployID
		rec.status.Staged, rec.status.Recent = ie.Staged.String(), ie.Recent
	}
}

// Run runs pulld as cfg says until ctx ends (daemon mode), or once (Once,
// DryRun, Terminate). It validates cfg first. In daemon mode it returns nil
// after a clean shutdown or a self-update, and an error when it cannot
// start (bad configuration, bucket URL, or a root locked by another pulld).
// In Once mode the error wraps ErrFailed when some env is not serving its
// manifest entry and ErrManifest when the manifest could not be used.
//
// Cancelling ctx (SIGTERM) stops pulld taking new work; a running script
// may finish for up to cfg.Grace before its context is cancelled too. The
// final status is written and the root unlocked before Run returns.
// STOPPING never runs on shutdown, only for envs that left the manifest and
// with Terminate.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.Logger
	hostname, err := os.Hostname()
	if err != nil {
		hostname = "unknown"
	}
	host, err := ReadHostInfo(cfg.HostInfo, hostname)
	if err != nil {
		log.Warn("host_info unusable; reporting the hostname only", "err", err)
	}
	if cfg.ComputeEnvType == "" {
		cfg.ComputeEnvType = host.ComputeEnvType
	}
	if cfg.Groups == nil {
		if err := checkGroups(host.Groups); err != nil {
			return fmt.Errorf("pulld: %w: groups= of %s: %w", cli.ErrUsage, cfg.HostInfo, err)
		}
		cfg.Groups = host.Groups
	}
	if cfg.Splay > 0 {
		d := rand.N(cfg.Splay)
		log.Debug("splay before the first request", "wait", d)
		if err := backoff.Sleep(ctx, d); err != nil {
			return nil // stopped while waiting: nothing was done
		}
	}
	store, err := blobstore.Open(ctx, cfg.Bucket)
	if err != nil {
		return fmt.Errorf("pulld: %w: %w", cli.ErrUsage, err)
	}
	defer store.Close()

	if cfg.DryRun {
		return dryRun(ctx, cfg, store)
	}
	var d *daemon // the engine reports to it once it exists
	eng, err := openEngine(cfg, store, func(env string, a manifest.Action) { d.started(env, a) })
	if err != nil {
		return err
	}
	defer eng.Close()
	d = newDaemon(cfg, store, eng, host)
	switch {
	case cfg.Terminate:
		return d.terminate(ctx)
	case cfg.Once:
		return d.once(ctx)
	}
	return d.serve(ctx)
}

// serve is daemon mode: HTTP endpoints, nudge sources and the loop.
func (d *daemon) serve(ctx context.Context) error {
	log := d.log
	// pulld writes only its own status, so a store that ignores conditional
	// writes is no danger to it; it is said, for whoever reads the log.
	if err := fleet.CheckStore(ctx, d.store, true, log); err != nil {
		log.Warn("could not check that the store honours conditional writes", "err", err)
	}
	var ln net.Listener
	if d.cfg.Listen != "" {
		var err error
		if ln, err = net.Listen("tcp", d.cfg.Listen); err != nil {
			return fmt.Errorf("pulld: listen: %w", err)
		}
	}
	// Sources run until the loop is done; the loop runs until ctx ends.
	srcCtx, stopSources := context.WithCancel(context.WithoutCancel(ctx))
	var sources sync.WaitGroup
	defer func() {
		stopSources()
		waitTimeout(&sources, watchExitTimeout)
	}()

	var srv *http.Server
	if ln != nil {
		srv = &http.Server{Handler: d.handler(), ReadHeaderTimeout: 10 * time.Second}
		sources.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("HTTP server failed", "err", err)
			}
		})
		d.setSource(sourceHTTP, true)
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalTimeout)
			defer cancel()
			srv.Shutdown(sctx)
		}()
		log.Info("listening", "addr", ln.Addr().String())
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	d.setSource(sourceSignal, true)
	sources.Go(func() {
		for {
			select {
			case <-srcCtx.Done():
				return
			case <-hup:
				d.nudge(sourceSignal)
			}
		}
	})
	d.startSources(srcCtx, &sources)
	d.health = newHealth(srcCtx, d.eng.CurrentDir, func() { d.nudge(sourceHealth) })

	d.sd.send(systemd.SdNotifyReady + "\nSTATUS=polling " + d.cfg.Server)
	sources.Go(func() { d.sd.watchdog(srcCtx, &d.live) })
	log.Info("pulld started", "version", version(), "server", d.cfg.Server, "bucket", d.store.URL(),
		"root", d.cfg.Root, "poll", d.cfg.Poll, "heartbeat", d.cfg.Heartbeat, "nudge", d.cfg.Nudge)

	err := d.loop(ctx)
	d.sd.send(systemd.SdNotifyStopping)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalTimeout)
	defer cancel()
	d.writeStatus(fctx, true)
	return err
}

// startSources starts the nudge sources of -nudge, and the file watch for
// file:// buckets.
func (d *daemon) startSources(ctx context.Context, wg *sync.WaitGroup) {
	hooks := func(name string) nudge.Hooks {
		return nudge.Hooks{
			Nudge:  func() { d.nudge(name) },
			Ready:  func() { d.setSource(name, true) },
			Logger: d.log.With("nudge", name),
		}
	}
	start := func(name string, fn func(context.Context, nudge.Hooks) error) {
		d.setSource(name, false)
		wg.Go(func() {
			if err := fn(ctx, hooks(name)); err != nil && ctx.Err() == nil {
				d.log.Error("nudge source ended", "nudge", name, "err", err)
				d.setSource(name, false)
			}
		})
	}
	addrs := d.addresses()
	for _, s := range d.cfg.Nudge {
		src, _ := parseNudge(s, d.cfg.Server) // checked by Validate
		switch src.kind {
		case NudgeGCE:
			start(src.name(), func(ctx context.Context, h nudge.Hooks) error { return nudge.WatchGCE(ctx, src.arg, h) })
			for _, doc := range d.docs[1:] { // each group: its project attribute
				attr := nudge.GroupPushrevKey(doc.target.Name)
				start(src.name()+"-"+nudge.Address(doc.target), func(ctx context.Context, h nudge.Hooks) error { return nudge.WatchGCEProject(ctx, attr, h) })
			}
		default:
			subs := src.subscriptions(addrs)
			for _, u := range slices.Sorted(maps.Keys(subs)) {
				name := src.name()
				if len(subs) > 1 && u != src.arg {
					name += "-" + subs[u][0]
				}
				start(name, func(ctx context.Context, h nudge.Hooks) error { return nudge.WatchPubSub(ctx, u, subs[u], h) })
			}
		}
	}
	for _, doc := range d.docs {
		if path := manifestPath(d.store, doc.target); path != "" {
			name := sourceFile
			if doc.target.IsGroup() {
				name += "-" + nudge.Address(doc.target)
			}
			start(name, func(ctx context.Context, h nudge.Hooks) error { return nudge.WatchFile(ctx, path, h) })
		}
	}
}

// addresses returns the nudge addresses that concern this host: its
// server's, then each of its groups'.
func (d *daemon) addresses() []string {
	addrs := make([]string, len(d.docs))
	for i, doc := range d.docs {
		addrs[i] = nudge.Address(doc.target)
	}
	return addrs
}

// manifestPath returns the file of t's manifest in a file:// bucket,
// honouring the bucket's prefix, and "" for other buckets.
func manifestPath(s *blobstore.Store, t manifest.Target) string {
	dir := s.LocalDir()
	if dir == "" {
		return ""
	}
	key, err := blobstore.ManifestKey(t)
	if err != nil {
		return ""
	}
	if u, err := url.Parse(s.URL()); err == nil {
		key = u.Query().Get("prefix") + key
	}
	return filepath.Join(dir, filepath.FromSlash(key))
}

// nudge asks for a reconcile now. It never blocks: a nudge while one is
// already pending is merged with it.
func (d *daemon) nudge(source string) {
	d.met.nudges.WithLabelValues(source).Inc()
	select {
	case d.nudges <- source:
	default:
	}
}

func (d *daemon) setSource(name string, ready bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sources[name] = ready
}

// sourceStates returns a copy of the nudge sources' readiness.
func (d *daemon) sourceStates() map[string]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := make(map[string]bool, len(d.sources))
	for k, v := range d.sources {
		m[k] = v
	}
	return m
}

// loop reconciles at start (after a random delay), on every poll, on every
// nudge and when a failed env's retry is due, until ctx ends or pulld's own
// package was updated.
func (d *daemon) loop(ctx context.Context) error {
	work, cancel := withGrace(ctx, d.cfg.Grace)
	defer cancel()

	timer := time.NewTimer(initialDelay(d.cfg.Poll))
	defer timer.Stop()
	for {
		var trigger string
		select {
		case <-ctx.Done():
			d.log.Info("shutting down", "reason", context.Cause(ctx))
			return nil
		case <-timer.C:
			trigger = "poll"
		case trigger = <-d.nudges:
			if err := d.limiter.Wait(ctx); err != nil {
				continue // ctx ended
			}
		}
		timer.Stop()
		d.log.Debug("reconcile", "trigger", trigger)
		c := d.reconcile(ctx, work)
		d.writeStatus(context.WithoutCancel(work), false)
		if d.selfUpdated {
			d.log.Info("pulld's own package was updated; exiting so that the service manager starts the new binary", "app", d.cfg.Self)
			return nil
		}
		timer.Reset(d.nextWake(c, time.Now()))
	}
}

// nextWake returns how long to wait before the next reconcile without a
// nudge: a jittered poll period, less after a failed manifest read
// (backing off up to the poll period), and no later than the next due
// retry of a failed env.
func (d *daemon) nextWake(c cycle, now time.Time) time.Duration {
	next := backoff.Jitter(d.cfg.Poll)
	if d.inRollout() {
		next = min(next, d.cfg.RolloutHeartbeat) // the controller watches the heartbeats
	}
	if d.bucketFails > 0 {
		next = retryDelay(d.bucketFails, min(errRetryMin, d.cfg.Poll), d.cfg.Poll)
	}
	if !c.retryAt.IsZero() {
		next = min(next, max(c.retryAt.Sub(now), 0))
	}
	return next
}

// waitTimeout waits for wg, at most d.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
}
