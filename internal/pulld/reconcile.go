package pulld

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkginstall"
)

// errNoManifest is the reason given when the server has no manifest but
// envs are installed: absence is not taken as an order to stop them.
var errNoManifest = errors.New("no manifest")

// envRecord is what pulld knows about one env.
type envRecord struct {
	status manifest.EnvStatus
	retry  *retryState // set while the env's last attempt failed
}

// retryState schedules the next attempt at a failed env. It holds only for
// the manifest entry (or stop) that failed: a changed entry is tried at once.
type retryState struct {
	key      string // entryKey of what failed, or "stop"
	attempts int
	next     time.Time
}

// cycle is the outcome of one reconcile.
type cycle struct {
	manifestErr error     // the manifest could not be read or used; nothing was done
	failed      []string  // envs not serving their entry (failed, waiting for a retry, or not reached)
	retryAt     time.Time // earliest due retry, zero for none
}

// err maps the cycle to Run's errors for -once.
func (c cycle) err() error {
	if c.manifestErr != nil {
		return fmt.Errorf("pulld: %w: %w", ErrManifest, c.manifestErr)
	}
	if len(c.failed) > 0 {
		return fmt.Errorf("pulld: %w: %v", ErrFailed, c.failed)
	}
	return nil
}

// entryKey identifies everything about an entry that pkginstall acts on.
func entryKey(e manifest.Entry) string {
	m := manifest.Manifest{Packages: []manifest.Entry{e}}
	return string(m.Marshal())
}

// reconcile brings the host to the manifest once: read the manifest if it
// changed, then, in manifest order, deploy, roll back or restart each env
// that is not serving its entry, and stop the envs that left the manifest.
// It takes no new work once stop has ended; the action in progress runs on
// work. Envs whose last attempt failed are skipped until their retry is due.
func (d *daemon) reconcile(stop, work context.Context) cycle {
	d.live.set(true, false)
	defer d.live.set(false, false)
	d.selfUpdated = false
	m, err := d.refresh(work)
	if err != nil {
		d.met.reconciles.WithLabelValues(resultError).Inc()
		d.publish()
		return cycle{manifestErr: err}
	}
	var c cycle
	noteRetry := func(r *retryState) {
		if r == nil {
			return
		}
		if c.retryAt.IsZero() || r.next.Before(c.retryAt) {
			c.retryAt = r.next
		}
	}
	for _, e := range m.Packages {
		d.record(e.EnvName(), e.Package.App).status.Desired = e.Package.String()
	}
	for _, e := range m.Packages {
		env := e.EnvName()
		rec := d.envs[env]
		if stop.Err() != nil {
			c.failed = append(c.failed, env)
			continue
		}
		key := entryKey(e)
		if r := rec.retry; r != nil && r.key == key && time.Now().Before(r.next) {
			noteRetry(r)
			c.failed = append(c.failed, env)
			continue
		}
		if rec.retry != nil && rec.retry.key != key {
			rec.retry = nil // the entry changed: a fresh start
		}
		before := rec.status.Serving
		o := d.act(work, rec, key, func(ctx context.Context) pkginstall.Result { return d.eng.Apply(ctx, e) })
		if o.Failed() || o.Serving != e.Package {
			c.failed = append(c.failed, env)
			noteRetry(rec.retry)
			continue
		}
		if e.Package.App == d.cfg.Self && o.Serving.String() != before && o.Action != pkginstall.ActRestart && o.Action != pkginstall.ActNone {
			d.selfUpdated = true
		}
	}
	d.stopLeftovers(stop, work, m, &c, noteRetry)
	result := resultOK
	if len(c.failed) > 0 {
		result = resultFailed
	} else {
		d.met.lastSuccess.SetToCurrentTime()
	}
	d.met.reconciles.WithLabelValues(result).Inc()
	d.publish()
	return c
}

// stopLeftovers stops the installed envs that are not in m.
func (d *daemon) stopLeftovers(stop, work context.Context, m *manifest.Manifest, c *cycle, noteRetry func(*retryState)) {
	installed, err := d.eng.Installed()
	if err != nil {
		d.log.Error("list installed envs failed", "err", err)
		c.failed = append(c.failed, "(installed envs: "+err.Error()+")")
		return
	}
	for _, ie := range installed {
		if _, ok := m.Lookup(ie.Env); ok {
			continue
		}
		rec := d.record(ie.Env, "")
		rec.status.Desired = ""
		if rec.status.Serving == "" {
			rec.status.Serving = ie.Package.String()
		}
		if stop.Err() != nil {
			c.failed = append(c.failed, ie.Env)
			continue
		}
		const key = "stop"
		if r := rec.retry; r != nil && r.key == key && time.Now().Before(r.next) {
			noteRetry(r)
			c.failed = append(c.failed, ie.Env)
			continue
		}
		o := d.act(work, rec, key, func(ctx context.Context) pkginstall.Result { return d.eng.Stop(ctx, ie.Env) })
		if o.Failed() {
			c.failed = append(c.failed, ie.Env)
			noteRetry(rec.retry)
		}
	}
}

// act runs one Apply or Stop of rec's env through run, with status, log and
// metrics around it, and schedules a retry when it fails. The engine plans
// once, inside run: it calls d.started when it decides to act, and returns
// ActNone when the env already serves its entry.
func (d *daemon) act(work context.Context, rec *envRecord, key string, run func(context.Context) pkginstall.Result) pkginstall.Result {
	d.acting = acting{ctx: work, rec: rec, start: time.Now()}
	defer func() { d.acting = acting{} }()
	d.live.set(true, true)
	o := run(work)
	d.live.set(true, false)
	if o.Action == pkginstall.ActNone {
		rec.retry = nil
		serving := o.Serving.String()
		if rec.status.State != manifest.StateServing || rec.status.Serving != serving {
			rec.status.State, rec.status.Serving = manifest.StateServing, serving
			rec.status.Error, rec.status.Output = "", ""
			rec.status.Updated = time.Now().UTC()
		}
		return o
	}
	took := time.Since(d.acting.start)
	log := d.acting.log
	if log == nil { // the engine returned before acting (an invalid entry, a read-only root)
		log = d.log.With("env", rec.status.Env, "action", string(o.Action), "package", rec.status.Desired)
	}
	d.met.actionDuration.WithLabelValues(string(o.Action)).Observe(took.Seconds())
	d.met.downloaded.Add(float64(o.Downloaded))
	rec.status.State, rec.status.Step, rec.status.Serving = o.State, o.Step, o.Serving.String()
	rec.status.Error, rec.status.Output, rec.status.DeployID = errText(o.Err), o.Output, o.DeployID
	rec.status.Updated = time.Now().UTC()
	if !o.Failed() {
		d.met.actions.WithLabelValues(string(o.Action), "ok").Inc()
		rec.retry = nil
		log.Info("action done", "state", o.State, "serving", o.Serving, "took", took.Round(time.Millisecond))
		return o
	}
	d.met.actions.WithLabelValues(string(o.Action), "failed").Inc()
	r := rec.retry
	if r == nil || r.key != key {
		r = &retryState{key: key}
		rec.retry = r
	}
	r.attempts++
	r.next = time.Now().Add(retryDelay(r.attempts, d.cfg.RetryMin, d.cfg.RetryMax))
	log.Error("action failed", "state", o.State, "step", o.Step, "err", o.Err,
		"attempt", r.attempts, "retry_at", r.next.UTC().Format(time.RFC3339), "took", took.Round(time.Millisecond))
	return o
}

// acting is the action act is running, for started.
type acting struct {
	ctx   context.Context
	rec   *envRecord
	log   *slog.Logger // set by started
	start time.Time
}

// started is pkginstall's Config.Started: the engine decided to act on env.
// It reports DEPLOYING, so pushui shows it while the scripts run.
func (d *daemon) started(env string, act pkginstall.Action) {
	rec := d.acting.rec
	if rec == nil || rec.status.Env != env {
		return // not an action act runs (terminate reports on its own)
	}
	d.acting.start = time.Now()
	d.acting.log = d.log.With("env", env, "action", string(act), "package", rec.status.Desired)
	d.acting.log.Info("action started", "serving", rec.status.Serving)
	rec.status.State = manifest.StateDeploying
	rec.status.Step, rec.status.Error, rec.status.Output = "", "", ""
	rec.status.Updated = time.Now().UTC()
	d.publish()
	d.writeStatus(d.acting.ctx, false)
}

// errText is err's message, "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// record returns the record of env, creating it.
func (d *daemon) record(env, app string) *envRecord {
	rec, ok := d.envs[env]
	if !ok {
		rec = &envRecord{status: manifest.EnvStatus{Env: env, App: app, State: manifest.StateUnknown}}
		d.envs[env] = rec
	}
	if app != "" {
		rec.status.App = app
	}
	return rec
}

// refresh returns the manifest to act on, reading it when its version
// changed since the last read. It fails when the manifest cannot be read
// (counted as a bucket error and backed off), is invalid, or is absent
// while envs are installed; in each case nothing is touched, and the reason
// is kept in d.manifestErr for status.
func (d *daemon) refresh(ctx context.Context) (*manifest.Manifest, error) {
	bctx, cancel := context.WithTimeout(ctx, bucketTimeout)
	defer cancel()
	changed, _, err := d.store.ChangedManifest(bctx, d.cfg.Server, d.seen)
	if err == nil && (changed || !d.loaded) {
		err = d.read(bctx)
	}
	if err != nil {
		d.bucketFails++
		d.met.bucketErrors.Inc()
		d.manifestErr = "read manifest: " + err.Error()
		d.log.Error("read manifest failed; services keep running", "err", err, "failures", d.bucketFails)
		return nil, err
	}
	if d.bucketFails > 0 {
		d.log.Info("manifest readable again", "after_failures", d.bucketFails)
	}
	d.bucketFails = 0
	if d.invalid != nil {
		d.manifestErr = d.invalid.Error()
		return nil, d.invalid
	}
	d.manifestErr = ""
	if d.seen == "" {
		installed, err := d.eng.Installed()
		if err != nil {
			d.manifestErr = err.Error()
			return nil, err
		}
		if len(installed) > 0 {
			err := fmt.Errorf("%w at servers/%s.json: %d installed envs are left as they are", errNoManifest, d.cfg.Server, len(installed))
			d.manifestErr = err.Error()
			return nil, err
		}
	}
	return d.desired, nil
}

// read reads the manifest. An invalid manifest is remembered in d.invalid
// with its version, so it is not read again until it changes; d.desired
// keeps the last valid one but is not acted on meanwhile. A read error
// changes nothing.
func (d *daemon) read(ctx context.Context) error {
	m, v, err := d.store.ReadManifest(ctx, d.cfg.Server)
	if errors.Is(err, manifest.ErrInvalidManifest) {
		d.log.Error("manifest invalid; nothing is changed until it is fixed", "version", string(v), "err", err)
		d.loaded, d.seen, d.invalid = true, v, err
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range m.Packages {
		rec := d.envs[e.EnvName()]
		if rec == nil || rec.retry == nil {
			continue
		}
		if d.desired == nil {
			rec.retry = nil
		} else if old, ok := d.desired.Lookup(e.EnvName()); !ok || entryKey(old) != entryKey(e) {
			rec.retry = nil // a changed entry is tried at once
		}
	}
	d.log.Info("manifest read", "revision", m.Revision, "version", string(v), "envs", len(m.Packages))
	d.loaded, d.seen, d.desired, d.desiredVersion, d.invalid = true, v, m, v, nil
	d.met.manifestRevision.Set(float64(m.Revision))
	return nil
}

// envOrder returns the envs to report: the manifest's, in its order, then
// the others sorted.
func (d *daemon) envOrder() []string {
	var order []string
	if d.desired != nil {
		for _, e := range d.desired.Packages {
			order = append(order, e.EnvName())
		}
	}
	var rest []string
	for env := range d.envs {
		if !slices.Contains(order, env) {
			rest = append(rest, env)
		}
	}
	slices.Sort(rest)
	return append(order, rest...)
}
