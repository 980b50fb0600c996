package pkginstall

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
	"github.com/pushpull/pushpull/manifest"
)

// failEarly ends an attempt that failed before current was switched: the
// serving build is untouched.
func (a *attempt) failEarly(err error) {
	a.res.Err = err
	a.res.State, a.res.What = manifest.StateFailed, Failed
	if a.es.Serving == "" {
		a.es.Healthy = false
	}
}

// failAfterSwitch applies the entry's failure policy to a failure after
// current was switched to the new build, unless ctx ended: an interrupted
// deploy is left as it is, for the next run to finish.
func (a *attempt) failAfterSwitch(ctx context.Context, entry manifest.Entry, err error) {
	e, es, res := a.e, a.es, a.res
	res.Err = err
	res.State, res.What = manifest.StateFailed, Failed
	es.Healthy = false
	failedStep, failedOutput := res.Step, res.Output
	if ctx.Err() != nil {
		// Cancelled (pulld is shutting down): no policy, least of all
		// stop. The next run finishes the deploy.
		return
	}
	switch entry.Policy() {
	case manifest.PolicyContinue:
		return
	case manifest.PolicyStop:
		a.opcode, a.dtype = "STOP", "STOP"
		if id := e.currentID(a.env); id != "" {
			if serr := a.script(ctx, manifest.StepStopping, id); serr != nil {
				res.Err = fmt.Errorf("%w; then %w", err, serr)
			}
		}
		if rerr := os.Remove(e.currentLink(a.env)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			res.Err = fmt.Errorf("%w; then remove current: %w", err, rerr)
		} else {
			wrote("current removed")
			es.Serving = ""
		}
		res.State, res.What = manifest.StateStopped, FailedStopped
		res.Step, res.Output = failedStep, failedOutput
		return
	}
	if res.Action == manifest.ActionRestart {
		a.rollbackConfig(ctx, entry, err, failedStep, failedOutput)
		return
	}
	a.rollbackBuild(ctx, entry, err, failedStep, failedOutput)
}

// rollbackBuild is the rollback policy after a deploy or rollback action
// failed with err at failedStep: it re-renders the previously serving
// build's templates with the config it served with, switches current back
// to it and runs its restart scripts. It does nothing when there is no
// previous build, or it is no longer kept.
//
// The state always names both builds: the switch is recorded first
// (Serving and Previous, with their configs and restart tokens, trade
// places) and then made, and load undoes a recorded switch that a crash
// kept from being made. So a crash at any point leaves either the failed
// build serving with the previous one as Previous, from where the next
// Apply of the entry finishes the deploy and rolls back again, or the
// previous build serving with the failed one as Previous, from where it
// deploys the entry again.
func (a *attempt) rollbackBuild(ctx context.Context, entry manifest.Entry, err error, failedStep manifest.Step, failedOutput string) {
	e, es, res := a.e, a.es, a.res
	prevID := packageID(es.Previous)
	if es.Previous == "" || prevID == entry.Package.ID() || !e.kept(a.env, prevID) {
		return
	}
	a.log.Warn("rolling back to the previous build", "previous", es.Previous, "failed_step", failedStep)
	a.scripts = a.log.With("package", es.Previous)
	a.phase = "rollback"
	a.opcode, a.dtype = "ROLLBACK", "ROLLBACK"
	a.first = false
	a.build = es.Builds[prevID]
	a.build.Package = es.Previous
	a.config = es.PreviousConfig
	// Its templates may have been rendered with another config since it
	// served (a restart that failed and was left so, or was interrupted);
	// it is not current, so rendering it now disturbs nothing.
	if rerr := a.render(prevID, es.PreviousConfig); rerr != nil {
		res.Err = fmt.Errorf("%w; then roll back to %s: %w", err, es.Previous, rerr)
		return
	}
	swap := func() {
		es.Serving, es.Previous = es.Previous, es.Serving
		es.Config, es.PreviousConfig = es.PreviousConfig, es.Config
		es.Restart, es.PreviousRestart = es.PreviousRestart, es.Restart
	}
	swap()
	es.touch(prevID)
	a.step(failedStep)
	if rerr := renameio.Symlink(filepath.Join("builds", prevID), e.currentLink(a.env)); rerr != nil {
		swap()
		res.Err = fmt.Errorf("%w; then roll back to %s: %w", err, es.Previous, rerr)
		return
	}
	wrote("current -> " + prevID)
	for _, s := range []manifest.Step{manifest.StepPreRestart, manifest.StepRestarting, manifest.StepPostRestart} {
		if rerr := a.script(ctx, s, prevID); rerr != nil {
			res.Err = fmt.Errorf("%w; then roll back to %s: %w", err, es.Serving, rerr)
			return
		}
	}
	es.Healthy = true
	res.Err = fmt.Errorf("%w; rolled back to %s", err, es.Serving)
	res.Step, res.Output = failedStep, failedOutput
	res.State, res.What = manifest.StateRolledBack, FailedRolledBack
}

// rollbackConfig is the rollback policy after a restart failed with err at
// failedStep: it re-renders the serving build's templates with the config
// its restart scripts last completed with (es.Config, which a restart
// changes only once they complete with the new one) and runs them again.
// When that config is the entry's, only the restart token changed and
// there is nothing different to return to: it does nothing, and the env
// stays FAILED.
//
// It writes nothing to the state that the restart did not: es.Config names
// the previous config and es.Healthy is false from the start of the
// restart to the end of the rollback, so after a crash at any point the
// next Apply of the entry restarts with the new config again, and rolls
// back again when that fails.
func (a *attempt) rollbackConfig(ctx context.Context, entry manifest.Entry, err error, failedStep manifest.Step, failedOutput string) {
	es, res := a.es, a.res
	if maps.Equal(es.Config, entry.Config) {
		return
	}
	id := entry.Package.ID()
	a.log.Warn("rolling back to the previous config", "failed_step", failedStep)
	a.phase = "rollback"
	a.opcode, a.dtype = "ROLLBACK", "ROLLBACK"
	a.config = es.Config
	if rerr := a.render(id, es.Config); rerr != nil {
		res.Err = fmt.Errorf("%w; then roll back to the previous config: %w", err, rerr)
		return
	}
	for _, s := range []manifest.Step{manifest.StepPreRestart, manifest.StepRestarting, manifest.StepPostRestart} {
		if rerr := a.script(ctx, s, id); rerr != nil {
			res.Err = fmt.Errorf("%w; then roll back to the previous config: %w", err, rerr)
			return
		}
	}
	es.Healthy = true
	res.Err = fmt.Errorf("%w; rolled back to the previous config", err)
	res.Step, res.Output = failedStep, failedOutput
	res.State, res.What = manifest.StateRolledBack, FailedRolledBack
}
