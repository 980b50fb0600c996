package pulld

import (
	"bytes"
	"context"
	"time"

	"github.com/pushpull/pushpull/manifest"
)

// snapshot builds the status document from the loop's state.
func (d *daemon) snapshot() *manifest.Status {
	st := &manifest.Status{
		Server:       d.cfg.Server,
		PulldVersion: version(),
		Host:         d.host,
		Time:         time.Now().UTC(),
		// Status.Stale reads this as the heartbeat period: the longest a
		// healthy pulld goes without writing its status.
		PollSeconds:   int64(d.reportPeriod() / time.Second),
		ManifestError: d.manifestErr,
		Envs:          []manifest.EnvStatus{},
	}
	for _, doc := range d.docs {
		rev := int64(0)
		if doc.m != nil {
			rev = doc.m.Revision
		}
		if !doc.target.IsGroup() {
			st.ManifestRevision, st.ManifestVersion = rev, string(doc.version)
			continue
		}
		st.Groups = append(st.Groups, manifest.GroupStatus{Name: doc.target.Name, Revision: rev, Version: string(doc.version), Missing: doc.loaded && doc.seen == ""})
	}
	for _, env := range d.envOrder() {
		rec := d.envs[env]
		if rec == nil {
			continue
		}
		es := rec.status
		d.health.fill(&es)
		if r := rec.retry; r != nil && es.Error != "" {
			es.Attempts, es.NextAttempt = r.attempts, r.next.UTC()
		}
		st.Envs = append(st.Envs, es)
	}
	return st
}

// heartbeat is the period after which an unchanged status is written
// again: Heartbeat, or the rollout heartbeat while some entry is under a
// rollout.
func (d *daemon) heartbeat() time.Duration {
	if d.inRollout() {
		return min(d.cfg.Heartbeat, d.cfg.RolloutHeartbeat)
	}
	return d.cfg.Heartbeat
}

// reportPeriod is the longest pulld goes without writing its status, as
// status tells readers (PollSeconds): a status write waits for a poll, so
// the larger of the poll period and the heartbeat; while some entry is
// under a rollout pulld polls every rollout heartbeat too.
func (d *daemon) reportPeriod() time.Duration {
	poll := d.cfg.Poll
	if d.inRollout() {
		poll = min(poll, d.cfg.RolloutHeartbeat)
	}
	return max(poll, d.heartbeat())
}

// inRollout reports whether some entry the host follows is under a
// rollout.
func (d *daemon) inRollout() bool { return len(d.desired.Rollouts) > 0 }

// publish makes the loop's current state what /status, /metrics and the
// next status write show.
func (d *daemon) publish() {
	st := d.snapshot()
	d.current.Store(st)
	d.met.setEnvStates(st.Envs)
}

// writeStatus writes the published status to status/{server}.json when it
// changed since the last write, when four fifths of the heartbeat period
// have passed (polls come ±20% around their period, so with -heartbeat
// equal to -poll every poll writes one), or when force is set. A failed write is logged and counted; the next poll
// writes again.
func (d *daemon) writeStatus(ctx context.Context, force bool) {
	st := *d.current.Load()
	doc := st
	doc.Time = time.Time{}
	body := doc.Marshal()
	if !force && bytes.Equal(body, d.lastDoc) && time.Since(d.lastWrite) < d.heartbeat()*4/5 {
		return
	}
	st.Time = time.Time{} // the object's modification time is the heartbeat
	wctx, cancel := context.WithTimeout(ctx, d.statusTimeout)
	defer cancel()
	if err := d.store.WriteStatus(wctx, &st); err != nil {
		d.met.statusErrors.Inc()
		d.log.Warn("write status failed", "err", err)
		return
	}
	d.lastDoc, d.lastWrite = body, time.Now()
}
