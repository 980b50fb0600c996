package pkginstall

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/google/renameio/v2"

	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkgformat"
)

// What says how an action ended.
type What string

// The outcomes a Result reports.
const (
	Unchanged        What = "unchanged"           // nothing to do
	Deployed         What = "deployed"            // the entry's build serves (deploy)
	RolledBack       What = "rolled back"         // the entry's older build serves (rollback action)
	Restarted        What = "restarted"           // the serving build was restarted
	Stopped          What = "stopped"             // STOPPING ran, current removed
	Staged           What = "staged"              // the build is kept for a later switch (Stage)
	Failed           What = "failed"              // failed; the env is left as it is
	FailedRolledBack What = "failed, rolled back" // failed; the previous build, or the serving build with its previous config, serves again
	FailedStopped    What = "failed, stopped"     // failed; STOPPING ran, current removed
)

// Result is the outcome of Apply or Stop for one env.
type Result struct {
	Env    string
	Action manifest.Action
	What   What
	// State is the env's state afterwards: SERVING_BUILD, ROLLED_BACK,
	// FAILED or STOPPED.
	State manifest.State
	// Step is the step reached: SERVING_BUILD on success, else the step
	// that failed (or, after a policy, the step the policy reached).
	Step manifest.Step
	// Serving is the package current points at afterwards, the zero
	// PackageName for none.
	Serving manifest.PackageName
	// Err is why the action failed; nil on success. After a rollback it
	// ends with what was rolled back to ("; rolled back to {package}" or
	// "; rolled back to the previous config"), which pulld reports.
	Err error
	// Output is the last OutputTail bytes of the failing script's output,
	// and ExitCode its exit code (0 when it did not exit with one).
	Output   string
	ExitCode int
	// DeployID identifies this attempt; scripts see it as DEPLOY_ID.
	DeployID string
	// Downloaded counts the package bytes read from the bucket.
	Downloaded int64
	// Recent are the env's last outcomes after this action, its own
	// first; nil when the action was not run (manifest.ActionNone, an invalid entry).
	Recent []manifest.Outcome
}

// Failed reports whether the action did not reach its goal.
func (r Result) Failed() bool { return r.Err != nil }

// Plan says what Apply would do for entry now, without doing anything:
// manifest.ActionNone when current names the entry's build, whose restart scripts last
// completed with the entry's config and restart token; manifest.ActionRestart when only
// those differ (or a restart of that build failed); manifest.ActionRollback when the
// entry names a build of the same app older than the serving one and still
// kept on disk; manifest.ActionDeploy otherwise, including finishing a deploy that
// failed or was interrupted after current was switched. It errs only on an
// invalid entry.
func (e *Engine) Plan(entry manifest.Entry) (manifest.Action, error) {
	if err := entry.Validate(); err != nil {
		return "", fmt.Errorf("pkginstall: plan: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.plan(entry), nil
}

func (e *Engine) plan(entry manifest.Entry) manifest.Action {
	env := entry.EnvName()
	id := entry.Package.ID()
	cur := e.currentID(env)
	es := e.state.Envs[env]
	switch {
	case cur == "" || es == nil:
		return manifest.ActionDeploy
	case cur == id:
		if es.Healthy && es.Serving == entry.Package.String() {
			if maps.Equal(es.Config, entry.Config) && es.Restart == entry.Restart {
				return manifest.ActionNone
			}
			return manifest.ActionRestart
		}
		if es.Action == manifest.ActionRestart && es.Serving == entry.Package.String() {
			return manifest.ActionRestart // a failed or interrupted restart, again
		}
		return manifest.ActionDeploy // finish an interrupted or failed deploy
	case e.kept(env, id):
		if curPkg, err := manifest.ParsePackageName(es.Serving); err == nil &&
			curPkg.App == entry.Package.App && entry.Package.Compare(curPkg) < 0 {
			return manifest.ActionRollback
		}
	}
	return manifest.ActionDeploy
}

// attempt is one Apply or Stop under way.
type attempt struct {
	e        *Engine
	env      string
	es       *envState
	res      *Result
	log      *slog.Logger // names the entry's package
	scripts  *slog.Logger // names the package whose scripts run: the entry's, or the build a rollback returns to
	phase    string       // "" for the action itself, "rollback" for a rollback's runs: part of their log file names
	opcode   string       // DEPLOY, ROLLBACK, RESTART, STOP
	dtype    string       // REGULAR, ROLLBACK, RESTART, STOP
	first    bool
	build    buildRecord // the build being deployed: BUILD_*
	config   map[string]string
	deployID string
}

func newDeployID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return time.Now().UTC().Format("20060102T150405.000Z") + "-" + hex.EncodeToString(b)
}

// step records that the attempt reached step, in state.json.
func (a *attempt) step(step manifest.Step) {
	a.res.Step = step
	a.es.Step = step
	a.es.Updated = time.Now().UTC()
	if err := a.e.save(); err != nil {
		a.log.Error("write state failed", "err", err)
	}
}

// Apply brings entry's env to entry: deploy, roll back or restart, as Plan
// says, applying the entry's failure policy when a step fails. It never
// panics on a bad entry: every problem is in the Result.
func (e *Engine) Apply(ctx context.Context, entry manifest.Entry) Result {
	env := entry.EnvName()
	res := Result{Env: env, DeployID: newDeployID()}
	if e.readOnly {
		res.State, res.Err, res.What = manifest.StateFailed, fmt.Errorf("pkginstall: apply %s: %w", env, ErrReadOnly), Failed
		return res
	}
	if err := entry.Validate(); err != nil {
		res.State, res.Err, res.What = manifest.StateFailed, fmt.Errorf("pkginstall: apply: %w", err), Failed
		return res
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	es := e.env(env)
	res.Action = e.plan(entry)
	res.Serving = es.serving()
	if res.Action == manifest.ActionNone {
		res.State, res.Step, res.What = manifest.StateServing, manifest.StepServing, Unchanged
		res.DeployID = es.DeployID
		return res
	}
	a := &attempt{
		e: e, env: env, es: es, res: &res, deployID: res.DeployID, config: entry.Config,
		log: e.log.With("env", env, "deploy_id", res.DeployID),
	}
	// Script lines name the package whose script runs (a rollback runs
	// the previous build's); the attempt's own lines do not repeat it.
	a.scripts = a.log.With("package", entry.Package.String())
	e.started(env, res.Action)
	a.log.Info("deploy started", "package", entry.Package.String(), "action", string(res.Action), "serving", es.Serving)
	if es.Since.IsZero() {
		es.Since = time.Now().UTC()
	}
	es.State, es.Action, es.Target, es.DeployID, es.Error, es.Step = manifest.StateDeploying, res.Action, entry.Package.String(), res.DeployID, "", ""
	a.step("")
	switch res.Action {
	case manifest.ActionRestart:
		a.opcode, a.dtype = "RESTART", "RESTART"
		a.restart(ctx, entry)
	default:
		a.opcode, a.dtype = "DEPLOY", "REGULAR"
		if res.Action == manifest.ActionRollback {
			a.opcode, a.dtype = "ROLLBACK", "ROLLBACK"
		}
		a.deploy(ctx, entry)
	}
	es.State, es.Step = res.State, res.Step
	if res.Err != nil {
		es.Error = res.Err.Error()
	}
	es.remember(entry.Package.String(), &res)
	res.Serving, res.Recent = es.serving(), slices.Clone(es.Recent)
	e.prune(env)
	if err := e.save(); err != nil && res.Err == nil {
		res.Err = err
	}
	if res.Err != nil {
		a.log.Error("deploy failed", "what", string(res.What), "state", res.State, "step", res.Step, "serving", res.Serving, "err", res.Err)
	} else {
		a.log.Info("deploy done", "what", string(res.What), "serving", res.Serving)
	}
	return res
}

// deploy is the deploy and rollback cycle.
func (a *attempt) deploy(ctx context.Context, entry manifest.Entry) {
	e, es, res := a.e, a.es, a.res
	id := entry.Package.ID()
	servingID := e.currentID(a.env)
	resume := servingID == id // current already switched: only the restart scripts remain
	if resume {
		servingID = packageID(es.Previous)
		if !e.kept(a.env, servingID) {
			servingID = ""
		}
	}
	a.first = servingID == ""
	if rec, ok := es.Builds[id]; ok {
		a.build = rec
	} else {
		a.build = buildRecord{Package: entry.Package.String()}
	}
	a.build.Package = entry.Package.String()

	if !resume {
		if !a.install(ctx, entry, id, servingID) {
			return
		}
	} else {
		// Finish: templates may need the entry's config.
		a.step(manifest.StepStaging)
		if err := a.render(id, entry.Config); err != nil {
			a.failAfterSwitch(ctx, entry, err)
			return
		}
		es.Config, es.Restart = entry.Config, entry.Restart
	}
	for _, s := range []manifest.Step{manifest.StepPreRestart, manifest.StepRestarting, manifest.StepPostRestart} {
		if err := a.script(ctx, s, id); err != nil {
			a.failAfterSwitch(ctx, entry, err)
			return
		}
	}
	es.Healthy = true
	res.State, res.Step, res.What, res.Output = manifest.StateServing, manifest.StepServing, Deployed, ""
	if res.Action == manifest.ActionRollback {
		res.What = RolledBack
	}
	a.step(manifest.StepServing)
}

// install brings entry's build into place and switches current to it:
// its metadata, PRE_DOWNLOAD and POST_DOWNLOAD of the serving build
// (servingID, "" for none) around the download, the unpacking and
// templates, then the switch. It reports whether it got there; when it
// did not, the attempt has failed (failEarly before the switch,
// failAfterSwitch after).
func (a *attempt) install(ctx context.Context, entry manifest.Entry, id, servingID string) bool {
	e, es := a.e, a.es
	if !e.kept(a.env, id) {
		// Teletraan sets BUILD_* at every step: read the package's
		// metadata before the download scripts run.
		rec, err := a.describe(ctx, entry.Package)
		if err != nil {
			a.step(manifest.StepDownloading)
			a.failEarly(err)
			return false
		}
		a.build = rec
	}
	if servingID != "" {
		if err := a.script(ctx, manifest.StepPreDownload, servingID); err != nil {
			a.failEarly(err)
			return false
		}
	}
	var tmp *unpacked
	if !e.kept(a.env, id) {
		a.step(manifest.StepDownloading)
		u, rec, err := a.download(ctx, entry.Package)
		if err != nil {
			a.failEarly(err)
			return false
		}
		tmp, a.build = u, rec
	}
	if other := e.debOwner(a.env, a.build.Deb); other != "" {
		if tmp != nil {
			removeAll(tmp.dir)
		}
		a.failEarly(fmt.Errorf("pkginstall: %s: Debian package %s is env %s's on this host, and dpkg installs a package once: give each env its own Package (debian/control)", entry.Package, a.build.Deb, other))
		return false
	}
	if servingID != "" {
		if err := a.script(ctx, manifest.StepPostDownload, servingID); err != nil {
			if tmp != nil {
				removeAll(tmp.dir)
			}
			a.failEarly(err)
			return false
		}
	}
	a.step(manifest.StepStaging)
	if err := a.stage(tmp, id); err != nil {
		if tmp != nil {
			removeAll(tmp.dir)
		}
		a.failEarly(err)
		return false
	}
	// Record the switch, then make it: a crash in between is
	// reconciled by load, which trusts current.
	if servingID != "" {
		es.Previous, es.PreviousConfig, es.PreviousRestart = es.Serving, es.Config, es.Restart
	} else {
		es.Previous, es.PreviousConfig, es.PreviousRestart = "", nil, ""
	}
	es.Serving, es.Healthy, es.Config, es.Restart = entry.Package.String(), false, entry.Config, entry.Restart
	es.touch(id)
	a.step(manifest.StepStaging)
	if err := renameio.Symlink(filepath.Join("builds", id), e.currentLink(a.env)); err != nil {
		a.failAfterSwitch(ctx, entry, fmt.Errorf("pkginstall: switch current to %s: %w", id, err))
		return false
	}
	wrote("current -> " + id)
	return true
}

// debOwner returns the env other than env whose serving build is the
// Debian package deb, "" for none (or when deb is "").
func (e *Engine) debOwner(env, deb string) string {
	if deb == "" {
		return ""
	}
	for other, es := range e.state.Envs {
		if other == env {
			continue
		}
		if id := e.currentID(other); id != "" && es.Builds[id].Deb == deb {
			return other
		}
	}
	return ""
}

// restart is the RESTART cycle: re-render, then the serving build's restart
// scripts.
func (a *attempt) restart(ctx context.Context, entry manifest.Entry) {
	es, res := a.es, a.res
	id := entry.Package.ID()
	a.build = es.Builds[id]
	a.build.Package = entry.Package.String()
	// Not healthy from before the templates change until the scripts
	// complete with the entry's config, which only then becomes es.Config:
	// a crash in between plans this restart again.
	es.Healthy = false
	a.step(manifest.StepStaging)
	if err := a.render(id, entry.Config); err != nil {
		a.failAfterSwitch(ctx, entry, err)
		return
	}
	for _, s := range []manifest.Step{manifest.StepPreRestart, manifest.StepRestarting, manifest.StepPostRestart} {
		if err := a.script(ctx, s, id); err != nil {
			a.failAfterSwitch(ctx, entry, err)
			return
		}
	}
	es.Healthy, es.Config, es.Restart = true, entry.Config, entry.Restart
	res.State, res.Step, res.What, res.Output = manifest.StateServing, manifest.StepServing, Restarted, ""
	a.step(manifest.StepServing)
}

// stage renders the templates of the new build (in tmp, or in the kept
// build when tmp is nil) and, for tmp, sets the modes the archive gives its
// directories, then renames tmp to builds/{id} after recording it. Modes
// come after rendering so that a directory the package makes read-only
// can still receive its rendered files. The caller switches current.
func (a *attempt) stage(tmp *unpacked, id string) error {
	e, es := a.e, a.es
	if tmp == nil {
		return a.render(id, a.config)
	}
	if err := pkgformat.RenderTemplates(tmp.dir, a.config); err != nil {
		return fmt.Errorf("pkginstall: render %s: %w", id, err)
	}
	if err := tmp.modes.Apply(); err != nil {
		return fmt.Errorf("pkginstall: stage %s: %w", id, err)
	}
	a.build.Installed = time.Now().UTC()
	es.Builds[id] = a.build
	if err := e.save(); err != nil {
		return err
	}
	if err := os.Rename(tmp.dir, e.buildDir(a.env, id)); err != nil {
		return fmt.Errorf("pkginstall: stage %s: %w", id, err)
	}
	wrote("builds/" + id)
	return nil
}

// render renders the templates of the kept build id with config.
func (a *attempt) render(id string, config map[string]string) error {
	if err := pkgformat.RenderTemplates(a.e.buildDir(a.env, id), config); err != nil {
		return fmt.Errorf("pkginstall: render %s: %w", id, err)
	}
	wrote("templates of " + id)
	return nil
}
