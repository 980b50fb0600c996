package pkginstall

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pushpull/pushpull/manifest"
)

// Stop runs the serving build's STOPPING script for env and removes
// current. When STOPPING fails on every try, current stays, so that Stop
// can be tried again; the Result is FAILED.
func (e *Engine) Stop(ctx context.Context, env string) Result {
	res := Result{Env: env, Action: manifest.ActionStop, DeployID: newDeployID()}
	if e.readOnly {
		res.State, res.Err, res.What = manifest.StateFailed, fmt.Errorf("pkginstall: stop %s: %w", env, ErrReadOnly), Failed
		return res
	}
	if err := manifest.CheckName("env", env); err != nil {
		res.State, res.Err, res.What = manifest.StateFailed, fmt.Errorf("pkginstall: stop: %w", err), Failed
		return res
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	es := e.env(env)
	id := e.currentID(env)
	if id == "" {
		res.State, res.Step, res.What = manifest.StateStopped, manifest.StepStopping, Stopped
		if es.State != manifest.StateStopped {
			es.State, es.Step = manifest.StateStopped, manifest.StepStopping
			e.save()
		}
		return res
	}
	a := &attempt{
		e: e, env: env, es: es, res: &res, deployID: res.DeployID, opcode: "STOP", dtype: "STOP",
		config: es.Config, log: e.log.With("env", env, "deploy_id", res.DeployID),
	}
	a.scripts = a.log.With("package", es.Serving)
	a.build = es.Builds[id]
	a.build.Package = es.Serving
	e.started(env, manifest.ActionStop)
	a.log.Info("stop started", "package", es.Serving)
	es.State, es.Action, es.DeployID, es.Error = manifest.StateDeploying, manifest.ActionStop, res.DeployID, ""
	a.step(manifest.StepStopping)
	if err := a.script(ctx, manifest.StepStopping, id); err != nil {
		res.Err, res.State, res.What, res.Serving = err, manifest.StateFailed, Failed, es.serving()
		es.State, es.Error = manifest.StateFailed, err.Error()
		es.remember(es.Serving, &res)
		res.Recent = slices.Clone(es.Recent)
		a.step(manifest.StepStopping)
		a.log.Error("stop failed", "err", err)
		return res
	}
	if err := os.Remove(e.currentLink(env)); err != nil && !errors.Is(err, os.ErrNotExist) {
		res.Err, res.State, res.What, res.Serving = fmt.Errorf("pkginstall: stop %s: %w", env, err), manifest.StateFailed, Failed, es.serving()
		es.State, es.Error = manifest.StateFailed, res.Err.Error()
		es.remember(es.Serving, &res)
		res.Recent = slices.Clone(es.Recent)
		a.step(manifest.StepStopping)
		return res
	}
	wrote("current removed")
	res.State, res.What, res.Output = manifest.StateStopped, Stopped, ""
	es.remember(es.Serving, &res)
	res.Recent = slices.Clone(es.Recent)
	es.Serving, es.Healthy = "", false
	es.State = manifest.StateStopped
	a.step(manifest.StepStopping)
	a.log.Info("stop done")
	return res
}

// prune deletes env's least recently used builds beyond Keep, never the
// serving, the previous or the targeted build, and old attempt logs. A build is first
// renamed to a .tmp- name, so a crash never leaves a partial build under
// its own name.
func (e *Engine) prune(env string) {
	es := e.state.Envs[env]
	if es == nil {
		return
	}
	protect := map[string]bool{e.currentID(env): true, packageID(es.Serving): true, packageID(es.Previous): true, packageID(es.Target): true, packageID(es.Staged): true}
	ents, err := os.ReadDir(e.buildsDir(env))
	if err != nil {
		return
	}
	var ids []string
	for _, de := range ents {
		if de.IsDir() && !strings.HasPrefix(de.Name(), ".") {
			ids = append(ids, de.Name())
		}
	}
	// Most recently used first, then most recently installed.
	slices.SortFunc(ids, func(x, y string) int {
		rx, ry := es.Builds[x], es.Builds[y]
		if c := ry.Used.Compare(rx.Used); c != 0 {
			return c
		}
		if c := ry.Installed.Compare(rx.Installed); c != 0 {
			return c
		}
		return strings.Compare(y, x)
	})
	kept := 0
	changed := false
	for _, id := range ids {
		if protect[id] || kept < e.cfg.Keep {
			kept++
			continue
		}
		tmp := filepath.Join(e.buildsDir(env), tmpPrefix+"del-"+id)
		if err := os.Rename(e.buildDir(env, id), tmp); err != nil {
			e.log.Error("remove old build failed", "env", env, "build", id, "err", err)
			continue
		}
		delete(es.Builds, id)
		changed = true
		if err := removeAll(tmp); err != nil {
			e.log.Error("remove old build failed", "env", env, "build", id, "err", err)
		}
		e.log.Info("old build removed", "env", env, "build", id)
	}
	if changed {
		e.save()
	}
	e.pruneLogs(env)
}

// pruneLogs keeps the newest DefaultKeepLogs attempt logs of env.
func (e *Engine) pruneLogs(env string) {
	ents, err := os.ReadDir(e.logsDir(env))
	if err != nil || len(ents) <= DefaultKeepLogs {
		return
	}
	// Names start with the deploy id, which starts with the UTC time.
	names := make([]string, 0, len(ents))
	for _, de := range ents {
		names = append(names, de.Name())
	}
	slices.Sort(names)
	for _, n := range names[:len(names)-DefaultKeepLogs] {
		os.Remove(filepath.Join(e.logsDir(env), n))
	}
}
