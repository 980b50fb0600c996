package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"aead.dev/minisign"
	"gocloud.dev/blob"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/cli"
	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/internal/signing"
	"github.com/pushpull/pushpull/internal/skia"
	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkgformat"
)

// ImportSummary is what ImportSkia did.
type ImportSummary struct {
	Copied, AlreadyThere int // packages
	Written, Unchanged   int // server manifests
	// Failed counts the packages and server lists that could not be
	// imported (each has a note); placeholders dropped are not failures.
	Failed int
	// Notes lists, one line each, what the import changed or left out: a
	// placeholder dropped, a package it could not import, a manifest left
	// alone, the push config it wrote.
	Notes []string
}

// ErrIncomplete is wrapped by ImportSkia's error when some package or
// server list could not be imported; the rest was.
var ErrIncomplete = errors.New("import incomplete")

// ImportOptions are ImportSkia's settings beside its buckets.
type ImportOptions struct {
	User string // recorded in the audit records
	// SignKey, when set, signs every package imported (and one already
	// imported without a signature), for fleets whose pulld -verify-key.
	SignKey *minisign.PrivateKey
	Logger  *slog.Logger // one line per package copied and manifest written
}

// ImportSkia copies a Skia push bucket (from) into pushpull's layout in
// to: every debs/{app}/*.deb that is a Debian package as the package
// {app}/{app}-{time}-{commit}.deb with pushpull's metadata made from
// Skia's (appname, userid, hash, datetime, dirty and note, each checked
// against the name; services is reported, as the maintainer scripts
// restart them), and every server/{host}.json as servers/{host}.json
// naming those packages, without Skia's "app/" placeholders (an app with
// no version chosen), duplicates, and names whose .deb is not there. With
// no push config in to, it writes one allowing each server the apps it
// lists, placeholders included, and each server to already has the apps
// its manifest names.
//
// It is idempotent: a package already in to with the same content is not
// copied again (one whose content differs is a collision, reported), and a
// server manifest that exists is left alone (reported when it differs from
// the import). Nothing in from is modified. The manifests are written
// through fleet, with an audit record by opts.User, and nothing is
// nudged. The error wraps ErrIncomplete when something could not be
// imported.
func ImportSkia(ctx context.Context, from, to *blobstore.Store, opts ImportOptions) (ImportSummary, error) {
	im := &skiaImport{from: from, to: to, opts: opts, log: opts.Logger, imported: map[string]manifest.PackageName{},
		servers: map[string]*manifest.Manifest{}, placeholders: map[string][]string{}}
	if im.log == nil {
		im.log = slog.New(slog.DiscardHandler)
	}
	if err := eachKey(ctx, from.Bucket(), skia.DebsPrefix, func(key string) error { return im.deb(ctx, key) }); err != nil {
		return im.sum, err
	}
	if err := eachKey(ctx, from.Bucket(), skia.ServersPrefix, func(key string) error { return im.server(ctx, key) }); err != nil {
		return im.sum, err
	}
	if err := importConfig(ctx, to, im.servers, im.placeholders, opts.User, im.note); err != nil {
		return im.sum, err
	}
	if err := im.writeManifests(ctx); err != nil {
		return im.sum, err
	}
	if im.sum.Failed > 0 {
		return im.sum, fmt.Errorf("%w: %s not imported (see above)", ErrIncomplete, plural(im.sum.Failed, "package or server list"))
	}
	return im.sum, nil
}

// skiaImport is one ImportSkia: what it has imported so far and what it
// has to say about it.
type skiaImport struct {
	from, to     *blobstore.Store
	opts         ImportOptions
	log          *slog.Logger
	sum          ImportSummary
	imported     map[string]manifest.PackageName // Skia name → pushpull name
	servers      map[string]*manifest.Manifest   // the manifests to write
	placeholders map[string][]string             // server → apps it lists without a version
}

func (im *skiaImport) note(format string, args ...any) {
	im.sum.Notes = append(im.sum.Notes, fmt.Sprintf(format, args...))
}

func (im *skiaImport) fail(format string, args ...any) {
	im.sum.Failed++
	im.note(format, args...)
}

// deb imports the .deb at key. Only the context's end is an error: a
// package that cannot be imported is noted and counted.
func (im *skiaImport) deb(ctx context.Context, key string) error {
	if !strings.HasSuffix(key, ".deb") {
		return nil
	}
	skiaName := strings.TrimPrefix(key, skia.DebsPrefix)
	p, copied, err := importDeb(ctx, im.from.Bucket(), im.to, key, skiaName, im.opts.SignKey, im.note)
	switch {
	case err != nil && ctx.Err() != nil:
		return err
	case err != nil:
		im.fail("package %s not imported: %v", key, err)
	case copied:
		im.imported[skiaName] = p
		im.sum.Copied++
		im.log.Info("package imported", "from", key, "package", p.String())
	default:
		im.imported[skiaName] = p
		im.sum.AlreadyThere++
	}
	return nil
}

// server turns the Skia server list at key into the manifest to write,
// with the packages imported. Only the context's end is an error.
func (im *skiaImport) server(ctx context.Context, key string) error {
	host, ok := strings.CutSuffix(strings.TrimPrefix(key, skia.ServersPrefix), ".json")
	if !ok {
		return nil
	}
	if err := manifest.CheckName("server", host); err != nil {
		im.fail("%s not imported: %v", key, err)
		return nil
	}
	data, err := readLimited(ctx, im.from.Bucket(), key)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		im.fail("%s not imported: %v", key, err)
		return nil
	}
	names, err := skia.ParseServer(data)
	if err != nil {
		im.fail("%s not imported: %v", key, err)
		return nil
	}
	m := &manifest.Manifest{Packages: []manifest.Entry{}}
	var dropped, missing []string
	seen := map[string]bool{}
	for _, n := range names {
		p, ok := im.imported[n]
		switch app, isPlaceholder := strings.CutSuffix(n, "/"); {
		case seen[n]:
		case ok:
			m.Packages = append(m.Packages, manifest.Entry{Package: p})
		case isPlaceholder && manifest.CheckName("app", app) == nil:
			dropped = append(dropped, app)
			im.placeholders[host] = append(im.placeholders[host], app)
		default:
			missing = append(missing, fmt.Sprintf("%q", n))
		}
		seen[n] = true
	}
	if len(dropped) > 0 {
		im.note("%s: dropped the placeholders of %s (no version chosen)", key, strings.Join(dropped, ", "))
	}
	if len(missing) > 0 {
		im.note("%s: dropped %d names whose .deb was not imported: %s", key, len(missing), strings.Join(missing[:min(len(missing), 5)], ", "))
	}
	if err := m.Validate(); err != nil {
		im.fail("%s not imported: %v", key, err)
		return nil
	}
	im.servers[host] = m
	return nil
}

// writeManifests writes each server's manifest through fleet, only where
// none exists: one that exists and says the same is counted unchanged, one
// that differs is left alone with a note.
func (im *skiaImport) writeManifests(ctx context.Context) error {
	w := fleet.New(im.to, fleet.Options{Logger: im.log})
	for _, host := range slices.Sorted(maps.Keys(im.servers)) {
		m := im.servers[host]
		t := manifest.Server(host)
		_, err := w.Edit(ctx, fleet.Edit{
			Target: t, User: im.opts.User, Action: "import from Skia push " + im.from.URL(), IfVersion: "",
			Apply: func(cur *manifest.Manifest) error { cur.Packages = m.Packages; return nil },
		})
		switch {
		case errors.Is(err, blobstore.ErrConflict):
			cur, _, rerr := im.to.ReadManifest(ctx, t)
			if rerr == nil && string((&manifest.Manifest{Packages: cur.Packages}).Marshal()) == string((&manifest.Manifest{Packages: m.Packages}).Marshal()) {
				im.sum.Unchanged++
				continue
			}
			im.note("servers/%s.json exists and differs from the import: left alone", host)
		case err != nil:
			if ctx.Err() != nil {
				return err
			}
			im.fail("servers/%s.json not written: %v", host, err)
		default:
			im.sum.Written++
			im.log.Info("server manifest written", "server", host, "envs", len(m.Packages))
		}
	}
	return nil
}

// eachKey calls fn with every key under prefix of b, in order.
func eachKey(ctx context.Context, b *blob.Bucket, prefix string, fn func(key string) error) error {
	it := b.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		if obj.IsDir {
			continue
		}
		if err := fn(obj.Key); err != nil {
			return err
		}
	}
}

// readLimited reads key of b, refusing one larger than a document may be.
func readLimited(ctx context.Context, b *blob.Bucket, key string) ([]byte, error) {
	r, err := b.NewReader(ctx, key, nil)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, blobstore.MaxDocumentSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > blobstore.MaxDocumentSize {
		return nil, fmt.Errorf("larger than %d bytes", blobstore.MaxDocumentSize)
	}
	return data, nil
}

// runImport is Run for cfg.ImportSkia: it imports that bucket into
// cfg.Bucket and prints the summary to cfg.Out.
func runImport(ctx context.Context, cfg *Config) error {
	if err := sameBucket(cfg.ImportSkia, cfg.Bucket); err != nil {
		return err
	}
	opts := ImportOptions{User: cfg.User, Logger: cfg.Logger}
	if opts.User == "" {
		opts.User = currentUser()
	}
	if cfg.SignKey != "" {
		key, err := signing.LoadPrivateKey(cfg.SignKey, cfg.SignPassword)
		if err != nil {
			return fmt.Errorf("%w: -sign-key: %w", cli.ErrUsage, err)
		}
		opts.SignKey = &key
	}
	from, err := blobstore.Open(ctx, cfg.ImportSkia)
	if err != nil {
		return fmt.Errorf("-import-skia: %w", err)
	}
	defer from.Close()
	to, err := openBucket(ctx, cfg)
	if err != nil {
		return err
	}
	defer to.Close()
	if err := checkConditional(ctx, to, cfg); err != nil {
		return err
	}
	sum, err := ImportSkia(ctx, from, to, opts)
	for _, n := range sum.Notes {
		fmt.Fprintln(cfg.Out, n)
	}
	fmt.Fprintf(cfg.Out, "imported from %s: %s copied, %s already there; %s written, %s unchanged\n", cfg.ImportSkia,
		plural(sum.Copied, "package"), plural(sum.AlreadyThere, "package"), plural(sum.Written, "server manifest"), plural(sum.Unchanged, "server manifest"))
	return err
}

// sameBucket refuses an import whose source and destination are one
// bucket, or file:// directories one inside the other.
func sameBucket(from, to string) error {
	bad := fmt.Errorf("%w: -import-skia %s and -bucket %s are the same bucket: import into another one", cli.ErrUsage, from, to)
	if from == to {
		return bad
	}
	fu, ferr := url.Parse(from)
	tu, terr := url.Parse(to)
	if ferr != nil || terr != nil || fu.Scheme != tu.Scheme {
		return nil
	}
	if fu.Scheme != "file" {
		if fu.Host == tu.Host {
			return bad // one bucket, whatever the query (a prefix= is still inside it)
		}
		return nil
	}
	a, b := filepath.Clean(fu.Path), filepath.Clean(tu.Path)
	if a == b || strings.HasPrefix(a, b+string(filepath.Separator)) || strings.HasPrefix(b, a+string(filepath.Separator)) {
		return bad
	}
	return nil
}

// importDeb copies the .deb at key of src into to, unless it is there
// already with the same content, signing it with key when key is set, and
// returns its pushpull name and whether it copied it.
func importDeb(ctx context.Context, src *blob.Bucket, to *blobstore.Store, key, skiaName string, sign *minisign.PrivateKey, note func(string, ...any)) (manifest.PackageName, bool, error) {
	sp, err := skia.ParseName(skiaName)
	if err != nil {
		return manifest.PackageName{}, false, err
	}
	attrs, err := src.Attributes(ctx, key)
	if err != nil {
		return manifest.PackageName{}, false, err
	}
	meta, err := skiaMeta(sp, attrs.Metadata)
	if err != nil {
		return manifest.PackageName{}, false, err
	}
	p, err := sp.PackageName(meta.Dirty)
	if err != nil {
		return manifest.PackageName{}, false, err
	}
	if s := attrs.Metadata[skia.MetaServices]; s != "" {
		note("%s: services %s are not carried over: the .deb's maintainer scripts restart them", key, s)
	}
	info, err := to.StatPackage(ctx, p)
	switch {
	case err == nil:
		unsigned := false
		if sign != nil {
			_, err := to.ReadSignature(ctx, p)
			if err != nil && !errors.Is(err, blobstore.ErrNotFound) {
				return manifest.PackageName{}, false, err
			}
			unsigned = err != nil
		}
		// One read of the object: its sha256, and the signature's digest
		// when it is to be signed now.
		h, sh := sha256.New(), signing.NewHasher()
		if err := copyObject(ctx, src, key, io.MultiWriter(h, sh)); err != nil {
			return manifest.PackageName{}, false, err
		}
		sum := hex.EncodeToString(h.Sum(nil))
		if sum != info.Meta.SHA256 {
			return manifest.PackageName{}, false, fmt.Errorf("collides with %s, already in the bucket with other content (the same app, second and commit)", p)
		}
		if unsigned {
			if err := to.WriteSignature(ctx, p, sh.Sign(*sign, p.String(), sum)); err != nil {
				return manifest.PackageName{}, false, err
			}
		}
		return p, false, nil
	case !errors.Is(err, blobstore.ErrNotFound):
		return manifest.PackageName{}, false, err
	}
	pw, err := to.NewPackageWriter(ctx, p, meta)
	if err != nil {
		return manifest.PackageName{}, false, err
	}
	var h *signing.Hasher
	dst := io.Writer(pw)
	if sign != nil {
		h = signing.NewHasher()
		dst = io.MultiWriter(pw, h)
	}
	head := &headChecker{w: dst}
	if err := copyObject(ctx, src, key, head); err != nil {
		pw.Abort()
		return manifest.PackageName{}, false, err
	}
	if !head.deb() {
		pw.Abort()
		return manifest.PackageName{}, false, fmt.Errorf("not a Debian package (no ar archive with debian-binary first)")
	}
	if h != nil {
		if err := to.WriteSignature(ctx, p, h.Sign(*sign, p.String(), pw.SHA256())); err != nil {
			pw.Abort()
			return manifest.PackageName{}, false, err
		}
	}
	if err := pw.Close(); err != nil {
		return manifest.PackageName{}, false, err
	}
	return p, true, nil
}

// skiaMeta is pushpull's metadata for the Skia package sp, from its object
// metadata md, each of which must agree with the name.
func skiaMeta(sp skia.Package, md map[string]string) (manifest.PackageMeta, error) {
	meta := manifest.PackageMeta{App: sp.App, Commit: sp.Commit, Built: sp.Built, User: sp.User, Host: sp.Host, Note: md[skia.MetaNote], Format: manifest.FormatDeb}
	if a := md[skia.MetaAppName]; a != "" && a != sp.App {
		return meta, fmt.Errorf("its %s is %q, its name says %s", skia.MetaAppName, a, sp.App)
	}
	if h := strings.ToLower(md[skia.MetaHash]); h != "" {
		if manifest.CheckCommit(h) != nil || !strings.HasPrefix(h, sp.Commit) && !strings.HasPrefix(sp.Commit, h) {
			return meta, fmt.Errorf("its %s is %q, its name says %s", skia.MetaHash, md[skia.MetaHash], sp.Commit)
		}
		if len(h) > len(meta.Commit) {
			meta.Commit = h // the full commit
		}
	}
	if u := md[skia.MetaUserID]; u != "" && u != sp.User+"@"+sp.Host {
		return meta, fmt.Errorf("its %s is %q, its name says %s@%s", skia.MetaUserID, u, sp.User, sp.Host)
	}
	if d := md[skia.MetaDirty]; d != "" {
		var err error
		if meta.Dirty, err = strconv.ParseBool(d); err != nil {
			return meta, fmt.Errorf("its %s is %q, not true or false", skia.MetaDirty, d)
		}
	}
	if s := md[skia.MetaDateTime]; s != "" {
		if t, err := time.Parse(time.RFC3339, s); err != nil || !t.Equal(sp.Built) {
			return meta, fmt.Errorf("its %s is %q, its name says %s", skia.MetaDateTime, s, sp.Built.Format(time.RFC3339))
		}
	}
	return meta, nil
}

// copyObject streams key of b into w.
func copyObject(ctx context.Context, b *blob.Bucket, key string, w io.Writer) error {
	r, err := b.NewReader(ctx, key, nil)
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	return nil
}

// headChecker passes writes through to w and keeps the first bytes, to
// tell whether they start a Debian package.
type headChecker struct {
	w    io.Writer
	head []byte
}

func (c *headChecker) Write(p []byte) (int, error) {
	if n := pkgformat.DebMagicLen - len(c.head); n > 0 {
		c.head = append(c.head, p[:min(n, len(p))]...)
	}
	return c.w.Write(p)
}

func (c *headChecker) deb() bool { return pkgformat.IsDebHead(c.head) }

// importConfig writes a push config allowing each imported server the apps
// it lists, placeholders included, and each server that already has a
// manifest in to the apps that manifest names, when to has no push config.
func importConfig(ctx context.Context, to *blobstore.Store, servers map[string]*manifest.Manifest, placeholders map[string][]string, user string, note func(string, ...any)) error {
	if len(servers) == 0 {
		return nil
	}
	if c, _, err := to.ReadPushConfig(ctx); err != nil || c != nil {
		if err != nil {
			return fmt.Errorf("push config: %w", err)
		}
		return nil // the operator's: fleet enforces it
	}
	c := &manifest.PushConfig{Servers: map[string][]string{}}
	allow := func(host string, apps ...string) {
		for _, a := range apps {
			if !slices.Contains(c.Servers[host], a) {
				c.Servers[host] = append(c.Servers[host], a)
			}
		}
	}
	existing, err := to.ListServers(ctx)
	if err != nil {
		return fmt.Errorf("push config: %w", err)
	}
	for _, host := range existing {
		c.Servers[host] = []string{}
		if m, _, err := to.ReadManifest(ctx, manifest.Server(host)); err == nil {
			for _, e := range m.Packages {
				allow(host, e.Package.App)
			}
		}
	}
	for host, m := range servers {
		if c.Servers[host] == nil {
			c.Servers[host] = []string{}
		}
		for _, e := range m.Packages {
			allow(host, e.Package.App)
		}
		allow(host, placeholders[host]...)
	}
	w := fleet.New(to, fleet.Options{})
	if _, err := w.PutConfig(ctx, user, c, ""); err != nil {
		if errors.Is(err, blobstore.ErrConflict) {
			return nil // another writer made one first: it rules
		}
		return fmt.Errorf("push config: %w", err)
	}
	note("%s written: each server may run the apps it lists (edit it to allow more)", blobstore.PushConfigKey)
	return nil
}
