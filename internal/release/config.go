package release

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pushpull/pushpull/internal/cli"
	"github.com/pushpull/pushpull/internal/nudge"
	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkgformat"
)

// PasswordEnv is the environment variable holding the password of an
// encrypted signing key.
const PasswordEnv = "PUSHPULL_SIGN_PASSWORD"

// Errors Run returns (wrapped); check them with errors.Is.
var (
	// ErrInvalidTree: the tree failed validation; nothing was uploaded.
	ErrInvalidTree = pkgformat.ErrInvalidTree
	// ErrExists: a package of that name already exists (same app, commit
	// and second); nothing was overwritten.
	ErrExists = errors.New("package already exists")
	// ErrNotGit: DIR is not in a git repository and no commit was given.
	ErrNotGit = errors.New("not a git repository")
	// ErrDeploy: the package was stored but some server's manifest could
	// not be updated.
	ErrDeploy = errors.New("deploy failed")
	// ErrNoPackages: List found no packages of the app; the error names
	// the apps the bucket has.
	ErrNoPackages = errors.New("no packages")
)

// Config is everything release is told by its flags.
type Config struct {
	Bucket string // bucket URL (required)
	App    string // app name (required)
	Dir    string // build directory; "" means "."

	// List prints App's packages instead of releasing.
	List bool
	// Create makes Bucket's directory when it is a file:// bucket whose
	// directory does not exist: a first release, or import, into a new
	// bucket. Without it such a bucket is refused, naming the directory,
	// as every program refuses it (blobstore.Open): a typo in -bucket is
	// not a new, empty bucket. List never creates one.
	Create bool
	// JSON prints the stored package as one JSON object (JSONResult)
	// instead of its name and one line per rollout started.
	JSON bool
	// ImportSkia, when set, is the URL of a Skia push bucket to import into
	// Bucket instead of releasing (ImportSkia); App and Dir are not used.
	ImportSkia string

	Note   string          // free text stored as metadata
	Commit string          // commit; "" reads git's HEAD
	Branch string          // branch; "" reads git's current branch
	Repo   string          // repository URL; "" reads git's origin
	Format manifest.Format // "" means manifest.FormatZstd

	// SignKey is a minisign secret key file; "" stores no signature.
	// SignPassword decrypts it when it is encrypted.
	SignKey      string
	SignPassword string

	// Deploy lists servers whose manifests are pointed at the package, and
	// DeployGroups groups whose manifests are (one write per group,
	// whatever its size).
	Deploy, DeployGroups []string
	// Rollouts lists groups to start a rollout of the package on, with
	// each group's default strategy from the push config (rollouts);
	// pushui drives it from there.
	Rollouts []string
	// AllowUnconditionalStore lets release write to an S3 store that does
	// not honour conditional writes (checked at start), with a warning:
	// safe only when nothing else writes desired state.
	AllowUnconditionalStore bool
	// Nudge says how the deployed servers are nudged: by pub/sub, HTTP or
	// GCE instance metadata, every form it configures (see package nudge).
	// It is only opened, and checked, when Deploy or DeployGroups names
	// something.
	Nudge nudge.Config

	// User and Host are recorded in the metadata; "" means the current
	// user and the host name.
	User, Host string
	// Now returns the current time; nil means time.Now. Tests fix it.
	Now func() time.Time

	// Out receives the package name and the rollouts started, or the
	// JSONResult (or the listing); nil means os.Stdout.
	Out io.Writer
	// Progress, when non-nil, receives a progress line (ending in "\r")
	// several times a second while the package uploads, as for a terminal.
	Progress io.Writer
	// Summary, when non-nil, receives one line describing the stored
	// package (sizes, rate).
	Summary io.Writer
	// OnProgress, when non-nil, is called from the archiving goroutine as
	// bytes pass, with the uncompressed bytes read and the compressed bytes
	// written so far. It must be fast. Tests use it to fail uploads
	// mid-stream.
	OnProgress func(read, written int64)
	// Logger receives warnings and the deploy log; nil discards them.
	Logger *slog.Logger
}

// validate fills in defaults and checks the configuration before anything
// is opened. Its errors wrap cli.ErrUsage and name the setting at fault.
func (c *Config) validate() error {
	if c.Bucket == "" {
		return fmt.Errorf("%w: -bucket is required", cli.ErrUsage)
	}
	if c.ImportSkia != "" {
		if c.App != "" || c.List || c.deploys() || c.JSON || c.Note != "" || c.Commit != "" || c.Branch != "" || c.Repo != "" ||
			c.Dir != "" && c.Dir != "." || c.Format != "" && c.Format != manifest.FormatZstd {
			return fmt.Errorf("%w: -import-skia takes only -bucket, -create, -sign-key and -allow-unconditional-store", cli.ErrUsage)
		}
		return c.defaults()
	}
	if c.App == "" {
		return fmt.Errorf("%w: -app is required", cli.ErrUsage)
	}
	if err := manifest.CheckName("app", c.App); err != nil {
		return fmt.Errorf("%w: -app: %v", cli.ErrUsage, err)
	}
	if c.Dir == "" {
		c.Dir = "."
	}
	if c.Format == "" {
		c.Format = manifest.FormatZstd
	}
	if _, err := manifest.ParseFormat(string(c.Format)); err != nil {
		return fmt.Errorf("%w: -format: %v", cli.ErrUsage, err)
	}
	if c.Commit != "" {
		c.Commit = strings.ToLower(c.Commit)
		if err := manifest.CheckCommit(c.Commit); err != nil {
			return fmt.Errorf("%w: -commit: %v", cli.ErrUsage, err)
		}
	}
	for _, s := range c.Deploy {
		if err := manifest.CheckName("server", s); err != nil {
			return fmt.Errorf("%w: -deploy: %v", cli.ErrUsage, err)
		}
	}
	for _, g := range c.DeployGroups {
		if err := manifest.CheckName("group", g); err != nil {
			return fmt.Errorf("%w: -deploy-group: %v", cli.ErrUsage, err)
		}
	}
	for _, g := range c.Rollouts {
		if err := manifest.CheckName("group", g); err != nil {
			return fmt.Errorf("%w: -rollout: %v", cli.ErrUsage, err)
		}
		if slices.Contains(c.DeployGroups, g) {
			return fmt.Errorf("%w: -rollout %s and -deploy-group %s: give one", cli.ErrUsage, g, g)
		}
	}
	if c.List && (c.deploys() || c.Create || c.JSON || c.SignKey != "" || c.Commit != "" || c.Note != "") {
		return fmt.Errorf("%w: -list takes only -bucket and -app", cli.ErrUsage)
	}
	return c.defaults()
}

// defaults fills in Out, Now and Logger.
func (c *Config) defaults() error {
	if c.Out == nil {
		c.Out = os.Stdout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// ParseServers splits a -deploy value, "s1,s2", into server names:
// whitespace around names is ignored, empty items are skipped, duplicates
// are dropped (first occurrence kept) and every name must be a valid server
// name. Its errors wrap manifest.ErrInvalidName.
func ParseServers(s string) ([]string, error) { return parseNames("server", s) }

// ParseGroups parses a comma-separated list of group names, as ParseServers.
func ParseGroups(s string) ([]string, error) { return parseNames("group", s) }

// deploys reports whether c points any manifest at the package.
func (c *Config) deploys() bool { return len(c.Deploy)+len(c.DeployGroups)+len(c.Rollouts) > 0 }

func parseNames(kind, s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if err := manifest.CheckName(kind, item); err != nil {
			return nil, err
		}
		if !seen[item] {
			seen[item] = true
			out = append(out, item)
		}
	}
	return out, nil
}
