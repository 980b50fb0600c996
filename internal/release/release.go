package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"sync/atomic"
	"time"

	"aead.dev/minisign"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/cli"
	"github.com/pushpull/pushpull/internal/nudge"
	"github.com/pushpull/pushpull/internal/signing"
	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkgformat"
)

// Result describes a stored package.
type Result struct {
	Name   manifest.PackageName
	Meta   manifest.PackageMeta // as stored, sha256 included
	Size   int64                // compressed bytes stored
	Raw    int64                // uncompressed bytes of the files archived
	Files  int                  // regular files archived
	Signed bool
	// Deployed lists the servers and groups whose manifests now name the
	// package.
	Deployed []manifest.Target
	// Rollouts lists the rollouts started (-rollout), in the order of
	// Config.Rollouts.
	Rollouts []Rollout
	Elapsed  time.Duration
}

// Rollout is a rollout release started: its group, env and ID, by which
// pushui's rollout page and API name it (/rollouts/{group}/{env}/{id}).
type Rollout struct {
	Group string `json:"group"`
	Env   string `json:"env"`
	ID    string `json:"id"`
}

// JSONResult is what release -o json prints: one JSON object, once the
// package is stored.
//
//	{
//	  "package": "hello/hello-20261207T101500Z-0123456789ab.tar.zst",
//	  "sha256": "…",
//	  "signed": false,
//	  "deployed": [{"kind": "server", "name": "web-1"}, {"kind": "group", "name": "canary"}],
//	  "rollouts": [{"group": "web", "env": "hello", "id": "20261207t101500-1a2b3c"}],
//	  "error": "…"
//	}
//
// deployed and rollouts are always lists, empty when nothing was asked
// for or nothing succeeded; error is there only when a deploy or rollout
// failed after the package was stored (release then exits 1 and prints
// the error on stderr too).
type JSONResult struct {
	Package  string       `json:"package"`
	SHA256   string       `json:"sha256"`
	Signed   bool         `json:"signed"`
	Deployed []JSONTarget `json:"deployed"`
	Rollouts []Rollout    `json:"rollouts"`
	Error    string       `json:"error,omitempty"`
}

// JSONTarget is a server or group of JSONResult.Deployed.
type JSONTarget struct {
	Kind manifest.Kind `json:"kind"` // "server" or "group"
	Name string        `json:"name"`
}

// jsonResult is r as release -o json prints it, with err, the error of a
// deploy or rollout after the package was stored, if any.
func jsonResult(r Result, err error) JSONResult {
	j := JSONResult{
		Package: r.Name.String(), SHA256: r.Meta.SHA256, Signed: r.Signed,
		Deployed: []JSONTarget{}, Rollouts: []Rollout{},
	}
	for _, t := range r.Deployed {
		j.Deployed = append(j.Deployed, JSONTarget{Kind: t.Kind, Name: t.Name})
	}
	j.Rollouts = append(j.Rollouts, r.Rollouts...)
	if err != nil {
		j.Error = err.Error()
	}
	return j
}

// printResult prints what was stored to cfg.Out: the package name on the
// first line, then "rollout GROUP ID" for each rollout started; or, with
// cfg.JSON, the JSONResult.
func printResult(cfg *Config, r Result, err error) error {
	if cfg.JSON {
		enc := json.NewEncoder(cfg.Out)
		enc.SetIndent("", "  ")
		if werr := enc.Encode(jsonResult(r, err)); werr != nil {
			return fmt.Errorf("print the result: %w", werr)
		}
		return nil
	}
	fmt.Fprintln(cfg.Out, r.Name)
	for _, ro := range r.Rollouts {
		fmt.Fprintln(cfg.Out, "rollout", ro.Group, ro.ID)
	}
	return nil
}

// Run does what cfg says: with cfg.List it prints cfg.App's packages to
// cfg.Out (ErrNoPackages when it has none); otherwise it releases cfg.Dir
// as a package of cfg.App, with cfg.Deploy and cfg.DeployGroups points
// those servers and groups at it and nudges them, with cfg.Rollouts starts
// a rollout of it on those groups, and prints to cfg.Out the package's
// name as the first line and "rollout GROUP ID" for each rollout started
// (or, with cfg.JSON, one JSONResult).
//
// Everything that can be checked before the upload is: flags, the tree
// (ErrInvalidTree), git facts (ErrNotGit), the signing key, the nudge
// configuration and the bucket (a file:// directory that does not exist
// is made only with cfg.Create). When a server's manifest cannot be
// updated, the package is stored anyway: Run prints it and returns the
// Result with an error wrapping ErrDeploy. Its errors start with
// "release: ".
func Run(ctx context.Context, cfg Config) (Result, error) {
	res, err := run(ctx, cfg)
	if err != nil {
		return res, fmt.Errorf("release: %w", err)
	}
	return res, nil
}

func run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	if cfg.ImportSkia != "" {
		return Result{}, runImport(ctx, &cfg)
	}
	if cfg.List {
		store, err := blobstore.Open(ctx, cfg.Bucket)
		if err != nil {
			return Result{}, err
		}
		defer store.Close()
		return Result{}, List(ctx, store, cfg.App, cfg.Out)
	}
	p, err := prepare(ctx, &cfg)
	if err != nil {
		return Result{}, err
	}
	defer p.close()
	store, err := openBucket(ctx, &cfg)
	if err != nil {
		return Result{}, err
	}
	defer store.Close()
	if err := checkConditional(ctx, store, &cfg); err != nil {
		return Result{}, err
	}
	if err := checkDeploy(ctx, store, &cfg); err != nil {
		return Result{}, err
	}
	if err := checkOtherFormats(ctx, store, p.name); err != nil {
		return Result{}, err
	}
	res, err := upload(ctx, store, &cfg, p)
	if err != nil {
		return Result{}, err
	}
	if cfg.Summary != nil {
		fmt.Fprintln(cfg.Summary, summary(res))
	}
	var derr error
	if len(cfg.Deploy)+len(cfg.DeployGroups) > 0 {
		res.Deployed, derr = deploy(ctx, store, &cfg, p, res.Name)
	}
	if len(cfg.Rollouts) > 0 {
		var rerr error
		res.Rollouts, rerr = startRollouts(ctx, store, &cfg, p, res.Name)
		for _, r := range res.Rollouts {
			cfg.Logger.Info("rollout started: pushui drives it", "group", r.Group, "rollout", r.ID)
		}
		derr = errors.Join(derr, rerr)
	}
	if err := printResult(&cfg, res, derr); err != nil {
		return res, errors.Join(derr, err)
	}
	return res, derr
}

// openBucket opens cfg.Bucket to write into. A file:// bucket whose
// directory does not exist is made with cfg.Create, and the log says so;
// without it, it is refused with an error naming the directory and
// -create, as blobstore.Open refuses it for every program.
func openBucket(ctx context.Context, cfg *Config) (*blobstore.Store, error) {
	if !cfg.Create {
		store, err := blobstore.Open(ctx, cfg.Bucket)
		if errors.Is(err, blobstore.ErrNotFound) {
			return nil, fmt.Errorf("%w (give -create to make a new bucket there)", err)
		}
		return store, err
	}
	store, created, err := blobstore.Create(ctx, cfg.Bucket)
	if err != nil {
		return nil, err
	}
	if created {
		cfg.Logger.Info("bucket directory created (-create): a new, empty bucket", "bucket", cfg.Bucket, "dir", store.LocalDir())
	}
	return store, nil
}

// prepared is what is known before the upload starts.
type prepared struct {
	tree   *pkgformat.Tree
	name   manifest.PackageName
	meta   manifest.PackageMeta
	key    *minisign.PrivateKey
	nudger *nudge.Nudger
}

func (p *prepared) close() {
	if p.nudger != nil {
		_ = p.nudger.Close(context.Background())
	}
}

// prepare validates the tree, reads git facts, loads the signing key and
// sets up nudging: everything that must hold before anything is uploaded.
func prepare(ctx context.Context, cfg *Config) (*prepared, error) {
	t, err := pkgformat.WalkTree(cfg.Dir)
	if errors.Is(err, pkgformat.ErrNotDir) {
		return nil, fmt.Errorf("%w: -dir: %v", cli.ErrUsage, err)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.Format == manifest.FormatDeb:
		if err := t.CheckDeb(cfg.App); err != nil {
			return nil, err
		}
	case !t.HasScripts:
		cfg.Logger.Warn("no teletraan/ directory: releasing a package without deploy scripts", "dir", cfg.Dir)
	}
	if n := len(t.Writable); n > 0 {
		cfg.Logger.Warn("files writable by group or others: hosts install them without those bits (pulld runs the scripts as root)",
			"count", n, "first", t.Writable[:min(n, 5)])
	}
	meta := manifest.PackageMeta{
		App: cfg.App, Commit: cfg.Commit, Branch: cfg.Branch, Repo: cfg.Repo,
		User: cfg.User, Host: cfg.Host, Note: cfg.Note, Format: cfg.Format,
		Built: cfg.Now().UTC().Truncate(time.Second),
		Size:  t.Size,
	}
	g, err := ReadGit(ctx, cfg.Dir)
	switch {
	case errors.Is(err, ErrNotGit) && cfg.Commit != "":
		// Not a repository: the flags are all there is.
	case err != nil:
		if errors.Is(err, ErrNotGit) {
			return nil, fmt.Errorf("%w (give -commit SHA to release a tree that is not in a git repository)", err)
		}
		return nil, err
	default:
		meta.Dirty = g.Dirty
		if meta.Commit == "" {
			meta.Commit = g.Commit
		}
		if meta.Branch == "" {
			meta.Branch = g.Branch
		}
		if meta.Repo == "" {
			meta.Repo = g.Repo
		}
	}
	if meta.User == "" {
		meta.User = currentUser()
	}
	if meta.Host == "" {
		meta.Host, _ = os.Hostname()
	}
	name, err := manifest.NewPackageName(cfg.App, meta.Built, meta.Commit, meta.Dirty, cfg.Format)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", cli.ErrUsage, err)
	}
	p := &prepared{tree: t, name: name, meta: meta}
	if cfg.SignKey != "" {
		if cfg.SignPassword == "" {
			// Fail fast: a decryption attempt costs seconds of scrypt.
			if b, err := os.ReadFile(cfg.SignKey); err == nil && minisign.IsEncrypted(b) {
				return nil, fmt.Errorf("%w: -sign-key %s is encrypted and %s is not set", cli.ErrUsage, cfg.SignKey, PasswordEnv)
			}
		}
		key, err := signing.LoadPrivateKey(cfg.SignKey, cfg.SignPassword)
		if err != nil {
			return nil, fmt.Errorf("%w: -sign-key: %w", cli.ErrUsage, err)
		}
		p.key = &key
	}
	if cfg.deploys() {
		n, err := newNudger(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("%w: nudge: %w", cli.ErrUsage, err)
		}
		p.nudger = n
	}
	return p, nil
}

func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}

// upload streams the package into the store and, with a key, stores its
// signature; on any failure nothing is left under the package's name.
func upload(ctx context.Context, store *blobstore.Store, cfg *Config, p *prepared) (Result, error) {
	start := time.Now()
	pw, err := store.NewPackageWriter(ctx, p.name, p.meta)
	if errors.Is(err, blobstore.ErrConflict) {
		return Result{}, fmt.Errorf("%w: %s (released twice from the same commit within one second? wait a second and retry): %w", ErrExists, p.name, err)
	}
	if err != nil {
		return Result{}, err
	}
	sealed := false
	defer func() {
		if !sealed {
			pw.Abort()
		}
	}()

	var read, written atomic.Int64
	dst := []io.Writer{pw}
	var sig *signing.Hasher
	if p.key != nil {
		sig = signing.NewHasher()
		dst = append(dst, sig)
	}
	out := countingWriter{w: io.MultiWriter(dst...), n: &written}
	onRead := func(n int) {
		r := read.Add(int64(n))
		if cfg.OnProgress != nil {
			cfg.OnProgress(r, written.Load())
		}
	}
	stopProgress := startProgress(cfg.Progress, p.tree.Size, &read, &written, start)
	if p.meta.Format == manifest.FormatDeb {
		err = p.tree.WriteDeb(ctx, out, p.name, p.meta, onRead)
	} else {
		err = p.tree.WriteArchive(ctx, out, p.meta.Format, p.meta.Built, onRead)
	}
	stopProgress()
	if err != nil {
		return Result{}, fmt.Errorf("upload %s: %w", p.name, err)
	}
	var hexsum string
	sigKey := blobstore.PackageKey(p.name) + blobstore.SignatureSuffix
	if p.key != nil {
		hexsum = pw.SHA256()
		// The signature goes first, so a verifying pulld never sees the
		// package without it.
		if err := store.WriteSignature(ctx, p.name, sig.Sign(*p.key, p.name.String(), hexsum)); err != nil {
			return Result{}, fmt.Errorf("signature of %s: %w", p.name, err)
		}
	}
	if err := pw.Close(); err != nil {
		sealed = true // Close has cleaned up; Abort would do nothing
		if p.key != nil {
			// Remove the signature unless the package did appear (a seal
			// whose answer was lost): it must not end up unsigned.
			dctx := context.WithoutCancel(ctx)
			if _, serr := store.StatPackage(dctx, p.name); errors.Is(serr, blobstore.ErrNotFound) {
				_ = store.Bucket().Delete(dctx, sigKey)
			}
		}
		if errors.Is(err, blobstore.ErrConflict) {
			return Result{}, fmt.Errorf("%w: %s: %w", ErrExists, p.name, err)
		}
		return Result{}, fmt.Errorf("store %s: %w", p.name, err)
	}
	sealed = true
	if p.key != nil && pw.SHA256() != hexsum {
		return Result{}, fmt.Errorf("%s: sha256 mismatch between release (%s) and bucket writer (%s)", p.name, hexsum, pw.SHA256())
	}
	return Result{
		Name: p.name, Meta: pw.Meta(), Size: pw.Size(), Raw: read.Load(), Files: p.tree.Files,
		Signed: p.key != nil, Elapsed: time.Since(start),
	}, nil
}

// checkOtherFormats refuses a package whose build (app, second, commit) is
// already in the bucket in another format: a host keeps a build under its
// ID, which the format is not part of.
func checkOtherFormats(ctx context.Context, store *blobstore.Store, name manifest.PackageName) error {
	for _, f := range manifest.Formats() {
		if f == name.Format {
			continue
		}
		other := name
		other.Format = f
		_, err := store.StatPackage(ctx, other)
		if err == nil {
			return fmt.Errorf("%w: %s, the same build as %s (a host keeps builds by app, time and commit; wait a second and retry)", ErrExists, other, name)
		}
		if !errors.Is(err, blobstore.ErrNotFound) {
			return err
		}
	}
	return nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// summary is the one line describing a stored package.
func summary(r Result) string {
	signed := ""
	if r.Signed {
		signed = ", signed"
	}
	return fmt.Sprintf("release: stored %s: %s, %s → %s (%s) in %s, %s%s, sha256 %s",
		r.Name, plural(r.Files, "file"), mib(r.Raw), mib(r.Size), ratio(r.Raw, r.Size), r.Elapsed.Round(time.Millisecond),
		rate(r.Raw, r.Elapsed), signed, r.Meta.SHA256)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "- MiB/s"
	}
	return fmt.Sprintf("%.1f MiB/s", float64(n)/(1<<20)/d.Seconds())
}

func ratio(raw, packed int64) string {
	if packed == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", float64(raw)/float64(packed))
}

// startProgress prints a progress line to w every 200 ms until the
// returned function is called, which prints a last one and ends the line.
// A nil w prints nothing.
func startProgress(w io.Writer, total int64, read, written *atomic.Int64, start time.Time) func() {
	if w == nil {
		return func() {}
	}
	line := func() {
		r := read.Load()
		pct := 100.0
		if total > 0 {
			pct = 100 * float64(r) / float64(total)
		}
		fmt.Fprintf(w, "\rrelease: %5.1f%%  %s of %s read, %s uploaded, %s   ",
			pct, mib(r), mib(total), mib(written.Load()), rate(r, time.Since(start)))
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				line()
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
		line()
		fmt.Fprintln(w)
	}
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
