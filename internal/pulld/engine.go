package pulld

import (
	"errors"

	"context"
	"github.com/pushpull/pushpull/blobstore"

	"github.com/pushpull/pushpull/manifest"
)

// action is what a reconcile does to one env.
type action string

// The actions, as the dry-run plan, logs and metrics name them.
const (
	actNone     action = "none"
	actDeploy   action = "deploy"
	actRollback action = "rollback"
	actRestart  action = "restart"
	actStop     action = "stop"
)

// outcome is the result of one action, as status reports it.
type outcome struct {
	State      manifest.State
	Step       string // the step reached
	Serving    string // the package current points at afterwards, "" for none
	Error      string
	Output     string // tail of the failing script's output
	DeployID   string
	Downloaded int64 // package bytes read from the bucket
}

// failed reports whether the action did not reach its goal.
func (o outcome) failed() bool { return o.Error != "" }

// installedEnv is one env pkginstall has state for.
type installedEnv struct {
	Env     string
	Serving string         // package current points at, "" for none
	State   manifest.State // as last recorded
	Step    string
}

// engine is what the reconcile loop needs from the host install engine,
// pkginstall. Its methods are called from one goroutine at a time.
type engine interface {
	// Plan says what Apply would do for e, without doing anything.
	Plan(e manifest.Entry) (action, error)
	// Apply brings e's env to e: deploy, roll back or restart.
	Apply(ctx context.Context, e manifest.Entry) outcome
	// Stop runs STOPPING for env and takes it out of service.
	Stop(ctx context.Context, env string) outcome
	// Installed lists the envs with a build in service, in a stable order.
	Installed() ([]installedEnv, error)
	// Close releases the engine and its lock on the root.
	Close() error
}

// openEngine opens pkginstall on cfg.Root, taking its lock.
func openEngine(cfg Config, store *blobstore.Store) (engine, error) {
	return nil, errors.New("pulld: pkginstall is not available yet")
}

// openEngineReadOnly opens pkginstall on cfg.Root for Plan and Installed
// only, without taking the lock, so -dry-run works beside a running pulld.
func openEngineReadOnly(cfg Config, store *blobstore.Store) (engine, error) {
	return nil, errors.New("pulld: pkginstall is not available yet")
}
