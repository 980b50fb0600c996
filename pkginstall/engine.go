package pkginstall

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"aead.dev/minisign"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkgformat"
)

// Defaults of Config's zero fields.
const (
	DefaultKeep          = 5
	DefaultStepTimeout   = 30 * time.Minute // Teletraan's
	DefaultTries         = 3
	DefaultBackoff       = 2 * time.Second // then 4 s, 8 s, …
	DefaultDownloadTries = 4
	// DefaultComputeEnvType is COMPUTE_ENV_TYPE when Config names none.
	DefaultComputeEnvType = "PRODUCTION" // Teletraan's
	// DefaultKeepLogs is how many attempt log files are kept per env.
	DefaultKeepLogs = 200
)

// OutputTail is how much of a script's output a Result keeps.
const OutputTail = 10 << 10

// Errors, wrapped by the errors the Engine returns and reports.
var (
	// ErrLocked: another Engine (another pulld) holds the root.
	ErrLocked = errors.New("root is locked by another process")
	// ErrReadOnly: Apply or Stop on an Engine from OpenReadOnly.
	ErrReadOnly = errors.New("engine is read-only")
	// ErrChecksum: the package's bytes do not hash to its sha256 metadata.
	ErrChecksum = errors.New("sha256 mismatch")
	// ErrUnsigned: a verify key is configured and the package has no signature.
	ErrUnsigned = errors.New("package is not signed")
	// ErrNoSpace: the file system holding the root has less free space than
	// the package's size.
	ErrNoSpace = errors.New("not enough free disk space")
	// ErrScript: a deploy script failed on every try.
	ErrScript = errors.New("script failed")
	// ErrTimeout: a script attempt ran past Config.StepTimeout and its
	// process group was killed.
	ErrTimeout = errors.New("script timed out")
	// ErrNotInstalled: Stop of an env that has no serving build.
	ErrNotInstalled = errors.New("env is not installed")
)

// Config configures an Engine. Zero fields mean their defaults.
type Config struct {
	// Store is the bucket packages are read from. It may be nil for an
	// Engine that only rolls back, restarts, stops and plans.
	Store *blobstore.Store
	// Server is this host's server name, STAGE_NAME in scripts.
	Server string
	// ComputeEnvType is COMPUTE_ENV_TYPE in scripts (default
	// DefaultComputeEnvType, Teletraan's default).
	ComputeEnvType string
	// Keep is the number of builds kept per env (default 5), the most
	// recently serving first. The serving and the previously serving build
	// are never deleted.
	Keep int
	// StepTimeout bounds one attempt of one script (default 30 min).
	StepTimeout time.Duration
	// Tries is how often a failing script is run (default 3), waiting
	// Backoff, then twice that, and so on, between tries.
	Tries int
	// Backoff is the first wait between tries of a script or of a download
	// that failed on a transient bucket error (default 2 s).
	Backoff time.Duration
	// DownloadTries is how often a download is tried when the bucket fails
	// transiently (default 4).
	DownloadTries int
	// VerifyKeys, when not empty, makes every package need a valid
	// signature by one of them. Trusting two keys at once is how signing
	// keys are rotated without a window where new packages are refused.
	VerifyKeys []minisign.PublicKey
	// Logger receives the engine's log and every line of script output;
	// nil discards it.
	Logger *slog.Logger
	// MaxUnpack bounds what one package may unpack to (zero: unpack's defaults).
	MaxUnpack pkgformat.Limits
	// Run runs a prepared script command and waits for it; nil means
	// cmd.Run(). cmd was made with exec.CommandContext(ctx, …) and kills
	// its process group when ctx ends. Tests replace it to run no real
	// service.
	Run func(ctx context.Context, cmd *exec.Cmd) error
	// Started, when set, is called by Apply and Stop once they have decided
	// to act on env, before the first step runs; it is not called when
	// there is nothing to do. It runs on the caller's goroutine with the
	// Engine busy, so it must not call the Engine. pulld reports DEPLOYING
	// from it, which is how it plans only once.
	Started func(env string, a manifest.Action)
	// AptFix, for a .deb whose dpkg -i fails (unmet Depends), runs apt-get
	// -f install to bring its dependencies in, as a Skia host's operator
	// did by hand.
	AptFix bool
}

func (c *Config) setDefaults() {
	if c.Keep <= 0 {
		c.Keep = DefaultKeep
	}
	if c.StepTimeout <= 0 {
		c.StepTimeout = DefaultStepTimeout
	}
	if c.Tries <= 0 {
		c.Tries = DefaultTries
	}
	if c.Backoff <= 0 {
		c.Backoff = DefaultBackoff
	}
	if c.DownloadTries <= 0 {
		c.DownloadTries = DefaultDownloadTries
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ComputeEnvType == "" {
		c.ComputeEnvType = DefaultComputeEnvType
	}
	if c.Run == nil {
		c.Run = func(_ context.Context, cmd *exec.Cmd) error { return cmd.Run() }
	}
}

// Engine installs packages into one root directory. Its methods are safe
// for concurrent use but run one at a time.
type Engine struct {
	root     string
	cfg      Config
	log      *slog.Logger
	readOnly bool
	lock     *os.File // nil when read-only

	mu    sync.Mutex
	state *stateFile
}

// Open opens the engine on root, creating the directory when missing, and
// takes root/lock; a second Open of the same root, in this process or
// another, fails with an error wrapping ErrLocked until Close. It removes
// the temporary directories a crash left under envs/*/builds/ and reconciles
// state.json with the current symlinks on disk.
func Open(root string, cfg Config) (*Engine, error) {
	cfg.setDefaults()
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("pkginstall: open %s: %w", root, err)
	}
	if err := os.MkdirAll(abs, rootMode); err != nil {
		return nil, fmt.Errorf("pkginstall: open %s: %w", root, err)
	}
	if err := os.MkdirAll(filepath.Join(abs, "envs"), 0o755); err != nil {
		return nil, fmt.Errorf("pkginstall: open %s: %w", root, err)
	}
	lf, err := os.OpenFile(filepath.Join(abs, "lock"), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, privateFile)
	if err != nil {
		return nil, fmt.Errorf("pkginstall: open %s: %w", root, err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lf.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("pkginstall: open %s: %w", abs, ErrLocked)
		}
		return nil, fmt.Errorf("pkginstall: lock %s: %w", abs, err)
	}
	e := &Engine{root: abs, cfg: cfg, log: cfg.Logger, lock: lf}
	if err := e.tighten(); err != nil {
		e.Close()
		return nil, err
	}
	if err := e.cleanTemp(); err != nil {
		e.Close()
		return nil, err
	}
	if err := e.load(); err != nil {
		e.Close()
		return nil, err
	}
	if err := e.save(); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// OpenReadOnly opens the engine on root for Plan and Installed only,
// without taking the lock or changing anything on disk, so it works beside
// a running Engine. Apply and Stop fail with ErrReadOnly. A missing root is
// an empty one.
func OpenReadOnly(root string, cfg Config) (*Engine, error) {
	cfg.setDefaults()
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("pkginstall: open %s: %w", root, err)
	}
	e := &Engine{root: abs, cfg: cfg, log: cfg.Logger, readOnly: true}
	if err := e.load(); err != nil {
		return nil, err
	}
	return e, nil
}

// Root returns the engine's root directory, made absolute.
func (e *Engine) Root() string { return e.root }

// Close releases the lock. The engine must not be used afterwards.
func (e *Engine) Close() error {
	if e.lock == nil {
		return nil
	}
	err := e.lock.Close() // closing the descriptor releases the flock
	e.lock = nil
	return err
}

// Paths.

// CurrentDir returns the path of env's current link, the serving build's
// directory once resolved: where its programs run. It does not check that
// env serves anything.
func (e *Engine) CurrentDir(env string) string { return e.currentLink(env) }

func (e *Engine) envDir(env string) string    { return filepath.Join(e.root, "envs", env) }
func (e *Engine) buildsDir(env string) string { return filepath.Join(e.envDir(env), "builds") }
func (e *Engine) currentLink(env string) string {
	return filepath.Join(e.envDir(env), "current")
}
func (e *Engine) buildDir(env, id string) string { return filepath.Join(e.buildsDir(env), id) }
func (e *Engine) logsDir(env string) string      { return filepath.Join(e.envDir(env), "logs") }

// The modes of what the engine keeps private. state.json and the attempt
// logs hold config values, which often carry secrets, so only their owner
// (root, for pulld) may read them. The root itself may be passed through
// but not listed: services running as another user reach their builds
// under envs/, which stays 0755 as do the builds (whose modes are the
// package's, without group and other write).
const (
	rootMode    fs.FileMode = 0o711
	privateDir  fs.FileMode = 0o700 // envs/{env}/logs
	privateFile fs.FileMode = 0o600 // state.json, lock, attempt logs
)

// tighten gives an existing root the modes a new one gets: a root, state
// file, lock or logs made by an older pulld (or by hand) become private.
func (e *Engine) tighten() error {
	fix := func(p string, want fs.FileMode) error {
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("pkginstall: %w", err)
		}
		if fi.Mode().Type() == fs.ModeSymlink || fi.Mode().Perm() == want {
			return nil
		}
		if err := os.Chmod(p, want); err != nil {
			return fmt.Errorf("pkginstall: make %s private: %w", p, err)
		}
		return nil
	}
	for p, mode := range map[string]fs.FileMode{e.root: rootMode, e.statePath(): privateFile, filepath.Join(e.root, "lock"): privateFile} {
		if err := fix(p, mode); err != nil {
			return err
		}
	}
	envs, err := e.envNames()
	if err != nil {
		return err
	}
	for _, env := range envs {
		dir := e.logsDir(env)
		if err := fix(dir, privateDir); err != nil {
			return err
		}
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pkginstall: %w", err)
		}
		for _, ent := range ents {
			if ent.Type().IsRegular() {
				if err := fix(filepath.Join(dir, ent.Name()), privateFile); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// tmpPrefix starts the name of every temporary directory under builds/.
const tmpPrefix = ".tmp-"

// crashHook, when not nil, is called right after each write to the root
// that a crash could follow: every save of state.json, every rename of a
// build into builds/, and every switch or removal of current. point names
// the write. Only tests set it (through export_test.go), to kill the
// process at exactly that point and check that the next Open converges.
var crashHook func(point string)

// wrote calls crashHook, if set, after the write point.
func wrote(point string) {
	if crashHook != nil {
		crashHook(point)
	}
}

// currentID returns the build id env's current symlink names, "" for none.
func (e *Engine) currentID(env string) string {
	target, err := os.Readlink(e.currentLink(env))
	if err != nil {
		return ""
	}
	return filepath.Base(target)
}

// kept reports whether builds/{id} of env exists as a directory.
func (e *Engine) kept(env, id string) bool {
	fi, err := os.Lstat(e.buildDir(env, id))
	return err == nil && fi.IsDir()
}

// envNames lists the env directories under root/envs.
func (e *Engine) envNames() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(e.root, "envs"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pkginstall: list envs: %w", err)
	}
	var out []string
	for _, de := range ents {
		if de.IsDir() && manifest.CheckName("env", de.Name()) == nil {
			out = append(out, de.Name())
		}
	}
	return out, nil
}

// removeAll removes path and everything under it, as os.RemoveAll does,
// also when the tree is a build whose package made some of its directories
// read-only or unsearchable: permission bits bind every user but root, so
// pulld running as another user could not delete from them. When
// os.RemoveAll fails, removeAll gives every directory of the tree mode 0700
// (following no symlink) and tries once more; the error is the second
// try's.
func removeAll(path string) error {
	if err := os.RemoveAll(path); err == nil {
		return nil
	}
	filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		// Called for a directory before it is read, so that reading it
		// works; an error only leaves that part to the second try.
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(path)
}

// cleanTemp removes what a crash can leave behind: the .tmp- directories
// under every env's builds/, and the temporary files renameio makes beside
// state.json and current.
func (e *Engine) cleanTemp() error {
	envs, err := e.envNames()
	if err != nil {
		return err
	}
	strays, _ := filepath.Glob(filepath.Join(e.root, ".state.json*"))
	for _, env := range envs {
		s, _ := filepath.Glob(filepath.Join(e.envDir(env), ".current*"))
		strays = append(strays, s...)
	}
	for _, p := range strays {
		removeAll(p)
	}
	for _, env := range envs {
		ents, err := os.ReadDir(e.buildsDir(env))
		if err != nil {
			continue
		}
		for _, de := range ents {
			if strings.HasPrefix(de.Name(), tmpPrefix) {
				p := filepath.Join(e.buildsDir(env), de.Name())
				e.log.Info("removing leftover temporary directory", "env", env, "path", p)
				if err := removeAll(p); err != nil {
					return fmt.Errorf("pkginstall: clean %s: %w", p, err)
				}
			}
		}
	}
	return nil
}

// The state file.
