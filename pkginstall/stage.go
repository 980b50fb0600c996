package pkginstall

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/pushpull/pushpull/manifest"
)

// Stage downloads, verifies and unpacks p into env's builds without
// switching to it, so that a later Apply of an entry naming p needs no
// download (Depro's stage-then-flip): no script runs and what serves is
// untouched. A build already kept is not downloaded again. The staged
// build is kept, as the serving one is, until another is staged; the
// Result is Staged, or Failed with the reason (the env is left as it is).
func (e *Engine) Stage(ctx context.Context, env string, p manifest.PackageName) Result {
	res := Result{Env: env, Action: manifest.ActionStage, DeployID: newDeployID()}
	fail := func(err error) Result {
		res.Err, res.What = err, Failed
		return res
	}
	switch {
	case e.readOnly:
		return fail(fmt.Errorf("pkginstall: stage %s: %w", env, ErrReadOnly))
	case p.IsZero():
		return fail(errors.New("pkginstall: stage: no package"))
	}
	if err := manifest.CheckName("env", env); err != nil {
		return fail(fmt.Errorf("pkginstall: stage: %w", err))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	es := e.env(env)
	res.State, res.Serving = es.State, es.serving()
	id := p.ID()
	if e.kept(env, id) {
		res.What = Unchanged
		if es.Staged != p.String() {
			res.What = Staged
			es.Staged = p.String()
			if err := e.save(); err != nil {
				return fail(err)
			}
		}
		return res
	}
	a := &attempt{e: e, env: env, es: es, res: &res, deployID: res.DeployID,
		log: e.log.With("env", env, "deploy_id", res.DeployID)}
	a.scripts = a.log.With("package", p.String())
	e.started(env, manifest.ActionStage)
	a.log.Info("stage started", "package", p.String())
	u, rec, err := a.download(ctx, p)
	if err != nil {
		a.log.Error("stage failed", "err", err)
		return fail(err)
	}
	if err := u.modes.Apply(); err != nil {
		removeAll(u.dir)
		return fail(fmt.Errorf("pkginstall: stage %s: %w", id, err))
	}
	rec.Installed = time.Now().UTC()
	es.Builds[id], es.Staged = rec, p.String()
	if err := e.save(); err != nil {
		removeAll(u.dir)
		return fail(err)
	}
	if err := os.Rename(u.dir, e.buildDir(env, id)); err != nil {
		removeAll(u.dir)
		return fail(fmt.Errorf("pkginstall: stage %s: %w", id, err))
	}
	wrote("builds/" + id)
	e.prune(env)
	res.What, res.Downloaded = Staged, a.res.Downloaded
	a.log.Info("stage done")
	return res
}
