package pulld

import (
	"context"
	"errors"
	"fmt"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/cli"
	"github.com/pushpull/pushpull/internal/signing"
	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkginstall"
)

// engine is what the reconcile loop needs from the host install engine,
// pkginstall. Its methods are called from one goroutine at a time.
// *pkginstall.Engine implements it; tests use a fake over pkginstall's own
// types.
type engine interface {
	// Plan says what Apply would do for e, without doing anything; only
	// -dry-run calls it.
	Plan(e manifest.Entry) (manifest.Action, error)
	// Apply brings e's env to e: deploy, roll back or restart, or nothing
	// (ActNone). When it acts, it first calls the Started hook the engine
	// was opened with.
	Apply(ctx context.Context, e manifest.Entry) pkginstall.Result
	// Stage downloads and unpacks p for env beside what serves, for a
	// later switch with no download; it runs no script.
	Stage(ctx context.Context, env string, p manifest.PackageName) pkginstall.Result
	// Stop runs STOPPING for env and takes it out of service.
	Stop(ctx context.Context, env string) pkginstall.Result
	// Installed lists the envs with a build in service, in a stable order.
	Installed() ([]pkginstall.Installed, error)
	// CurrentDir is the directory of env's serving build (its current
	// link), where health checks run.
	CurrentDir(env string) string
	// Close releases the engine and its lock on the root.
	Close() error
}

var _ engine = (*pkginstall.Engine)(nil)

// openEngine opens pkginstall on cfg.Root, taking its lock; started is its
// Config.Started. A root held by another pulld is an error naming the root.
func openEngine(cfg Config, store *blobstore.Store, started func(string, manifest.Action)) (engine, error) {
	pc, err := engineConfig(cfg, store)
	if err != nil {
		return nil, err
	}
	pc.Started = started
	eng, err := pkginstall.Open(cfg.Root, pc)
	if errors.Is(err, pkginstall.ErrLocked) {
		return nil, fmt.Errorf("pulld: root %s is in use by another pulld: %w", cfg.Root, err)
	}
	if err != nil {
		return nil, err // pkginstall's error names the root and the reason
	}
	return eng, nil
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
		return nil, err // pkginstall's error names the root and the reason
	}
	return eng, nil
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
		AptFix:         cfg.AptFix,
	}
	for _, path := range cfg.VerifyKeys {
		key, err := signing.LoadPublicKey(path)
		if err != nil {
			return pc, fmt.Errorf("pulld: %w: -verify-key: %w", cli.ErrUsage, err)
		}
		pc.VerifyKeys = append(pc.VerifyKeys, key)
	}
	return pc, nil
}
