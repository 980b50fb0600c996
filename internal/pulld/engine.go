package pulld

import (
	"context"
	"errors"
	"fmt"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/signing"
	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkginstall"
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

// openEngine opens pkginstall on cfg.Root, taking its lock. A root held by
// another pulld is an error naming the root.
func openEngine(cfg Config, store *blobstore.Store) (engine, error) {
	pc, err := engineConfig(cfg, store)
	if err != nil {
		return nil, err
	}
	eng, err := pkginstall.Open(cfg.Root, pc)
	if errors.Is(err, pkginstall.ErrLocked) {
		return nil, fmt.Errorf("pulld: root %s is in use by another pulld: %w", cfg.Root, err)
	}
	if err != nil {
		return nil, fmt.Errorf("pulld: %w", err)
	}
	return pkgEngine{eng}, nil
}

// openEngineReadOnly opens pkginstall on cfg.Root for Plan and Installed
// only, without taking the lock, so -dry-run works beside a running pulld.
func openEngineReadOnly(cfg Config, store *blobstore.Store) (engine, error) {
	pc, err := engineConfig(cfg, store)
	if err != nil {
		return nil, err
	}
	eng, err := pkginstall.OpenReadOnly(cfg.Root, pc)
	if err != nil {
		return nil, fmt.Errorf("pulld: %w", err)
	}
	return pkgEngine{eng}, nil
}

// engineConfig maps pulld's configuration to pkginstall's.
func engineConfig(cfg Config, store *blobstore.Store) (pkginstall.Config, error) {
	pc := pkginstall.Config{
		Store:          store,
		Server:         cfg.Server,
		ComputeEnvType: cfg.ComputeEnvType,
		Keep:           cfg.Keep,
		StepTimeout:    cfg.StepTimeout,
		Logger:         cfg.Logger,
	}
	for _, path := range cfg.VerifyKeys {
		key, err := signing.LoadPublicKey(path)
		if err != nil {
			return pc, fmt.Errorf("pulld: %w: -verify-key: %w", ErrUsage, err)
		}
		pc.VerifyKeys = append(pc.VerifyKeys, key)
	}
	return pc, nil
}

// pkgEngine adapts *pkginstall.Engine to engine.
type pkgEngine struct{ e *pkginstall.Engine }

func (p pkgEngine) Plan(e manifest.Entry) (action, error) {
	a, err := p.e.Plan(e)
	return action(a), err
}

func (p pkgEngine) Apply(ctx context.Context, e manifest.Entry) outcome {
	return toOutcome(p.e.Apply(ctx, e))
}

func (p pkgEngine) Stop(ctx context.Context, env string) outcome {
	return toOutcome(p.e.Stop(ctx, env))
}

func (p pkgEngine) Installed() ([]installedEnv, error) {
	list, err := p.e.Installed()
	if err != nil {
		return nil, err
	}
	out := make([]installedEnv, 0, len(list))
	for _, ie := range list {
		out = append(out, installedEnv{Env: ie.Env, Serving: ie.Package, State: ie.State, Step: ie.Step})
	}
	return out, nil
}

func (p pkgEngine) Close() error { return p.e.Close() }

func toOutcome(r pkginstall.Result) outcome {
	o := outcome{
		State: r.State, Step: r.Step, Serving: r.Serving, Output: r.Output,
		DeployID: r.DeployID, Downloaded: r.Downloaded,
	}
	if r.Err != nil {
		o.Error = r.Err.Error()
	}
	return o
}
