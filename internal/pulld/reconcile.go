package pulld

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
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
	prevHeld := map[string]string{}
	for env, rec := range d.envs {
		prevHeld[env] = rec.status.Held
		rec.status.Source, rec.status.Held, rec.status.Rollout = "", "", ""
	}
	for _, e := range m.Entries {
		rec := d.record(e.EnvName(), e.Package.App)
		rec.status.Desired, rec.status.Source = e.Package.String(), m.From[e.EnvName()].Source()
		rec.status.Rollout = m.Rollouts[e.EnvName()]
	}
	for env, why := range m.Held {
		d.record(env, "").status.Held = why
		c.failed = append(c.failed, env+" (held: "+why+")")
	}
	for _, e := range m.Entries {
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
		if e.Package.App == d.cfg.Self && o.Serving.String() != before && o.Action != manifest.ActionRestart && o.Action != manifest.ActionNone {
			d.selfUpdated = true
		}
	}
	d.stage(stop, work, m)
	d.stopLeftovers(stop, work, m, &c, noteRetry)
	for env, rec := range d.envs { // say so when an env starts or stops being held
		switch held := rec.status.Held; {
		case held != "" && held != prevHeld[env]:
			d.log.Warn("env held: left as it is", "env", env, "reason", held)
		case held == "" && prevHeld[env] != "":
			d.log.Info("env no longer held", "env", env)
		}
	}
	serving := map[string]manifest.Entry{} // the envs serving their entry, for their health checks
	for _, e := range m.Entries {
		if rec := d.envs[e.EnvName()]; rec != nil && rec.status.State == manifest.StateServing && rec.status.Serving == e.Package.String() {
			serving[e.EnvName()] = e
		}
	}
	d.health.sync(serving)
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

// stage stages the package each entry's Stage names, for envs that do not
// serve or hold it already. A failure is logged and tried again at the
// next reconcile; it never touches what serves.
func (d *daemon) stage(stop, work context.Context, m manifest.Desired) {
	for _, e := range m.Entries {
		rec := d.envs[e.EnvName()]
		if e.Stage.IsZero() || rec == nil || stop.Err() != nil {
			continue
		}
		p := e.Stage.String()
		if rec.status.Staged == p || rec.status.Serving == p {
			continue
		}
		o := d.eng.Stage(work, e.EnvName(), e.Stage)
		d.met.downloaded.Add(float64(o.Downloaded))
		if o.Failed() {
			d.log.Error("stage failed; will try again", "env", e.EnvName(), "package", p, "err", o.Err)
			continue
		}
		d.log.Info("staged", "env", e.EnvName(), "package", p)
		rec.status.Staged = p
	}
}

// stopLeftovers stops the installed envs that no document names, unless
// they are held: a conflict between groups, or a group whose manifest is
// missing (its envs are unknown, so none is stopped).
func (d *daemon) stopLeftovers(stop, work context.Context, m manifest.Desired, c *cycle, noteRetry func(*retryState)) {
	installed, err := d.eng.Installed()
	if err != nil {
		d.log.Error("list installed envs failed", "err", err)
		c.failed = append(c.failed, "(installed envs: "+err.Error()+")")
		return
	}
	for _, ie := range installed {
		if _, ok := m.From[ie.Env]; ok {
			continue
		}
		rec := d.record(ie.Env, ie.Package.App)
		if rec.status.Serving == "" {
			rec.status.Serving = ie.Package.String()
		}
		if _, held := m.Held[ie.Env]; held {
			continue
		}
		rec.status.Desired = ""
		if ie.Package.App == d.cfg.Self {
			// Removing pulld's own package would take this host out of
			// the fleet, and dpkg -r of it would stop pulld mid-action.
			rec.status.Held = "pulld's own package (-self " + d.cfg.Self + "): pulld never removes itself; remove it by hand"
			continue
		}
		if len(m.Missing) > 0 {
			rec.status.Held = fmt.Sprintf("no document names env %s, and group %s has no manifest: left as it is", ie.Env, strings.Join(m.Missing, ", "))
			c.failed = append(c.failed, ie.Env+" (held: "+rec.status.Held+")")
			continue
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
	if o.Action == manifest.ActionNone {
		rec.retry = nil
		serving := o.Serving.String()
		if rec.status.State != manifest.StateServing || rec.status.Serving != serving {
			rec.status.State, rec.status.Serving, rec.status.Action = manifest.StateServing, serving, ""
			rec.status.Error, rec.status.Output = "", ""
			rec.status.Updated = time.Now().UTC()
		}
		return o
	}
	took := time.Since(d.acting.start)
	log := d.acting.log
	if log == nil { // the engine returned before acting (an invalid entry, a read-only root)
		log = d.log.With("env", rec.status.Env, "action", string(o.Action))
	}
	d.met.actionDuration.WithLabelValues(string(o.Action)).Observe(took.Seconds())
	d.met.downloaded.Add(float64(o.Downloaded))
	rec.status.State, rec.status.Step, rec.status.Serving, rec.status.Action = o.State, o.Step, o.Serving.String(), ""
	rec.status.Error, rec.status.Output, rec.status.DeployID = errText(o.Err), o.Output, o.DeployID
	rec.status.ExitCode = 0
	if o.Failed() {
		rec.status.ExitCode = o.ExitCode
	}
	rec.status.Updated = time.Now().UTC()
	if o.Recent != nil {
		rec.status.Recent = o.Recent
	}
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
func (d *daemon) started(env string, act manifest.Action) {
	rec := d.acting.rec
	if rec == nil || rec.status.Env != env {
		return // not an action act runs (terminate reports on its own)
	}
	d.acting.start = time.Now()
	d.acting.log = d.log.With("env", env, "action", string(act))
	d.acting.log.Info("action started", "package", rec.status.Desired, "serving", rec.status.Serving)
	rec.status.State, rec.status.Action = manifest.StateDeploying, act
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

// envOrder returns the envs to report: the manifest's, in its order, then
// the others sorted.
func (d *daemon) envOrder() []string {
	var order []string
	for _, e := range d.desired.Entries {
		order = append(order, e.EnvName())
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
