package pulld

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkginstall"
)

// withGrace returns a context for work in progress: it ends cfg.Grace after
// ctx ends (or when the returned cancel is called), so a script running at
// SIGTERM may finish.
func withGrace(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(grace, cancel)
		context.AfterFunc(work, func() { t.Stop() })
	})
	return work, func() {
		stop()
		cancel()
	}
}

// once reconciles once and reports the result: nil when every env serves
// its manifest entry.
func (d *daemon) once(ctx context.Context) error {
	work, cancel := withGrace(ctx, d.cfg.Grace)
	defer cancel()
	c := d.reconcile(ctx, work)
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(work), finalTimeout)
	defer fcancel()
	d.writeStatus(fctx, true)
	return c.err()
}

// terminate runs STOPPING for every installed env, the most recently listed
// first, for a host going away. It needs no manifest, so it works with the
// bucket unreachable; the status write is best-effort. It fails with
// ErrFailed when some env could not be stopped.
func (d *daemon) terminate(ctx context.Context) error {
	work, cancel := withGrace(ctx, d.cfg.Grace)
	defer cancel()
	d.statusTimeout = finalTimeout // the network may be going away too
	installed, err := d.eng.Installed()
	if err != nil {
		return fmt.Errorf("pulld: terminate: %w", err)
	}
	var failed []string
	for _, ie := range slices.Backward(installed) {
		rec := d.record(ie.Env, "")
		rec.status.Serving = ie.Package.String()
		if ie.Package.App == d.cfg.Self {
			d.log.Info("pulld's own env left installed", "env", ie.Env)
			continue
		}
		if ctx.Err() != nil {
			failed = append(failed, ie.Env)
			continue
		}
		if o := d.act(work, rec, "stop", func(ctx context.Context) pkginstall.Result { return d.eng.Stop(ctx, ie.Env) }); o.Failed() {
			failed = append(failed, ie.Env)
		}
	}
	d.publish()
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(work), finalTimeout)
	defer fcancel()
	d.writeStatus(fctx, true)
	if len(failed) > 0 {
		return fmt.Errorf("pulld: terminate: %w: %v", ErrFailed, failed)
	}
	return nil
}

// planStep is one line of a dry-run plan.
type planStep struct {
	Action  manifest.Action
	Env     string
	Package string // desired, "" for a stop
	Serving string // serving now, "" for none
	Note    string
}

// dryRun prints what a reconcile would do now, changing nothing on the host
// and writing nothing to the bucket.
func dryRun(ctx context.Context, cfg Config, store *blobstore.Store) error {
	bctx, cancel := context.WithTimeout(ctx, bucketTimeout)
	defer cancel()
	var docs []planDoc
	var sources []manifest.Source
	for _, t := range newDocuments(cfg.Server, cfg.Groups) {
		m, v, err := store.ReadManifest(bctx, t.target)
		if err != nil {
			return fmt.Errorf("pulld: %w: %w", ErrManifest, err)
		}
		doc := planDoc{target: t.target, version: v, revision: m.Revision}
		src := manifest.Source{Target: t.target}
		if v != "" {
			src.Manifest = m
		}
		docs, sources = append(docs, doc), append(sources, src)
	}
	eng, err := openEngineReadOnly(cfg, store)
	if err != nil {
		return err
	}
	defer eng.Close()
	steps, err := plan(eng, manifest.Merge(sources))
	if err != nil {
		return err
	}
	return printPlan(cfg.Out, docs, steps)
}

// planDoc is one document a plan was made from.
type planDoc struct {
	target   manifest.Target
	version  blobstore.Version // "" when absent
	revision int64
}

// actHold is the plan's action for an env pulld leaves as it is.
const actHold manifest.Action = "hold"

// plan returns the actions a reconcile would take for d, in its order: the
// desired envs, then stops of installed envs that left it; envs pulld
// leaves as they are (a conflict between groups, a group without a
// manifest) are "hold", with the reason.
func plan(eng engine, d manifest.Desired) ([]planStep, error) {
	installed, err := eng.Installed()
	if err != nil {
		return nil, fmt.Errorf("pulld: plan: %w", err)
	}
	serving := map[string]string{}
	for _, ie := range installed {
		serving[ie.Env] = ie.Package.String()
	}
	var steps []planStep
	for _, e := range d.Entries {
		act, err := eng.Plan(e)
		s := planStep{Action: act, Env: e.EnvName(), Package: e.Package.String(), Serving: serving[e.EnvName()]}
		if err != nil {
			s.Action, s.Note = "error", err.Error()
		}
		steps = append(steps, s)
	}
	for _, env := range slices.Sorted(maps.Keys(d.Held)) {
		steps = append(steps, planStep{Action: actHold, Env: env, Serving: serving[env], Note: d.Held[env]})
	}
	for _, ie := range installed {
		if _, ok := d.From[ie.Env]; ok {
			continue
		}
		if _, ok := d.Held[ie.Env]; ok {
			continue
		}
		s := planStep{Action: manifest.ActionStop, Env: ie.Env, Serving: ie.Package.String()}
		if len(d.Missing) > 0 {
			s.Action, s.Note = actHold, "group "+strings.Join(d.Missing, ", ")+" has no manifest"
		}
		steps = append(steps, s)
	}
	return steps, nil
}

// printPlan writes the documents the plan was made from and the plan as a
// table.
func printPlan(w io.Writer, docs []planDoc, steps []planStep) error {
	for _, d := range docs {
		key, _ := blobstore.ManifestKey(d.target)
		switch {
		case d.version != "":
			fmt.Fprintf(w, "manifest %s: revision %d\n", key, d.revision)
		case len(docs) == 1:
			fmt.Fprintf(w, "manifest %s: absent (nothing is changed without one)\n", key)
		default:
			fmt.Fprintf(w, "manifest %s: absent\n", key)
		}
	}
	notes := slices.ContainsFunc(steps, func(s planStep) bool { return s.Note != "" })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(cells ...string) {
		if !notes {
			cells = cells[:len(cells)-1]
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	row("ACTION", "ENV", "PACKAGE", "SERVING", "NOTE")
	for _, s := range steps {
		row(string(s.Action), s.Env, dash(s.Package), dash(s.Serving), s.Note)
	}
	return tw.Flush()
}
