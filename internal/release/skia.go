package release

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"gocloud.dev/blob"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/internal/skia"
	"github.com/pushpull/pushpull/manifest"
)

// ImportSummary is what ImportSkia did.
type ImportSummary struct {
	Copied, AlreadyThere int // packages
	Written, Unchanged   int // server manifests
	// Notes lists, one line each, what the import changed or left out: a
	// placeholder dropped, a package it could not import, a manifest left
	// alone, the push config it wrote.
	Notes []string
}

// ImportSkia copies a Skia push bucket (from) into pushpull's layout in
// to: every debs/{app}/*.deb as the package {app}/{app}-{time}-{commit}.deb
// with pushpull's metadata made from Skia's (appname, userid, hash,
// datetime, dirty, note; services is reported, as the maintainer scripts
// restart them), and every server/{host}.json as servers/{host}.json
// naming those packages, without Skia's "app/" placeholders (an app with
// no version chosen) and without names whose .deb is not there. With no
// push config in to, it writes one allowing each server the apps it runs.
//
// It is idempotent: a package already in to is not copied again, and a
// server manifest that exists is left alone (reported when it differs from
// the import). Nothing in from is modified. The manifests are written
// through fleet, with an audit record by user, and nothing is nudged.
func ImportSkia(ctx context.Context, from, to *blobstore.Store, user string, log *slog.Logger) (ImportSummary, error) {
	var sum ImportSummary
	note := func(format string, args ...any) { sum.Notes = append(sum.Notes, fmt.Sprintf(format, args...)) }
	src := from.Bucket()
	imported := map[string]manifest.PackageName{} // Skia name → pushpull name
	it := src.List(&blob.ListOptions{Prefix: skia.DebsPrefix})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return sum, fmt.Errorf("list %s: %w", skia.DebsPrefix, err)
		}
		if obj.IsDir || !strings.HasSuffix(obj.Key, ".deb") {
			continue
		}
		skiaName := strings.TrimPrefix(obj.Key, skia.DebsPrefix)
		p, copied, err := importDeb(ctx, src, to, obj.Key, skiaName, note)
		if err != nil {
			if ctx.Err() != nil {
				return sum, err
			}
			note("package %s not imported: %v", obj.Key, err)
			continue
		}
		imported[skiaName] = p
		if copied {
			sum.Copied++
			log.Info("package imported", "from", obj.Key, "package", p.String())
		} else {
			sum.AlreadyThere++
		}
	}

	servers := map[string]*manifest.Manifest{}
	it = src.List(&blob.ListOptions{Prefix: skia.ServersPrefix})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return sum, fmt.Errorf("list %s: %w", skia.ServersPrefix, err)
		}
		host, ok := strings.CutSuffix(strings.TrimPrefix(obj.Key, skia.ServersPrefix), ".json")
		if obj.IsDir || !ok {
			continue
		}
		if err := manifest.CheckName("server", host); err != nil {
			note("%s not imported: %v", obj.Key, err)
			continue
		}
		data, err := src.ReadAll(ctx, obj.Key)
		if err != nil {
			return sum, fmt.Errorf("read %s: %w", obj.Key, err)
		}
		names, err := skia.ParseServer(data)
		if err != nil {
			note("%s not imported: %v", obj.Key, err)
			continue
		}
		m := &manifest.Manifest{Packages: []manifest.Entry{}}
		for _, n := range names {
			app, file, _ := strings.Cut(n, "/")
			switch p, ok := imported[n]; {
			case file == "":
				note("%s: dropped the placeholder %q (app %s has no version chosen)", obj.Key, n, app)
			case !ok:
				note("%s: dropped %q: no such .deb was imported", obj.Key, n)
			default:
				m.Packages = append(m.Packages, manifest.Entry{Package: p})
			}
		}
		if err := m.Validate(); err != nil {
			note("%s not imported: %v", obj.Key, err)
			continue
		}
		servers[host] = m
	}
	if err := importConfig(ctx, to, servers, user, note); err != nil {
		return sum, err
	}
	w := fleet.New(to, fleet.Options{Logger: log})
	for _, host := range slices.Sorted(maps.Keys(servers)) {
		m := servers[host]
		t := manifest.Server(host)
		_, err := w.Edit(ctx, fleet.Edit{
			Target: t, User: user, Action: "import from Skia push " + from.URL(), IfVersion: "",
			Apply: func(cur *manifest.Manifest) error { cur.Packages = m.Packages; return nil },
		})
		switch {
		case errors.Is(err, blobstore.ErrConflict):
			cur, _, rerr := to.ReadManifest(ctx, t)
			if rerr == nil && string((&manifest.Manifest{Packages: cur.Packages}).Marshal()) == string((&manifest.Manifest{Packages: m.Packages}).Marshal()) {
				sum.Unchanged++
				continue
			}
			note("servers/%s.json exists and differs from the import: left alone", host)
		case err != nil:
			if ctx.Err() != nil {
				return sum, err
			}
			note("servers/%s.json not written: %v", host, err)
		default:
			sum.Written++
		}
	}
	return sum, nil
}

// runImport is Run for cfg.ImportSkia: it imports that bucket into
// cfg.Bucket and prints the summary to cfg.Out.
func runImport(ctx context.Context, cfg *Config) error {
	from, err := blobstore.Open(ctx, cfg.ImportSkia)
	if err != nil {
		return fmt.Errorf("-import-skia: %w", err)
	}
	defer from.Close()
	to, _, err := blobstore.Create(ctx, cfg.Bucket)
	if err != nil {
		return err
	}
	defer to.Close()
	if err := checkConditional(ctx, to, cfg); err != nil {
		return err
	}
	user := cfg.User
	if user == "" {
		user = currentUser()
	}
	sum, err := ImportSkia(ctx, from, to, user, cfg.Logger)
	for _, n := range sum.Notes {
		fmt.Fprintln(cfg.Out, n)
	}
	fmt.Fprintf(cfg.Out, "imported from %s: %s copied, %s already there; %s written, %s unchanged\n", cfg.ImportSkia,
		plural(sum.Copied, "package"), plural(sum.AlreadyThere, "package"), plural(sum.Written, "server manifest"), plural(sum.Unchanged, "server manifest"))
	return err
}

// importDeb copies the .deb at key of src into to, unless it is there
// already, and returns its pushpull name and whether it copied it.
func importDeb(ctx context.Context, src *blob.Bucket, to *blobstore.Store, key, skiaName string, note func(string, ...any)) (manifest.PackageName, bool, error) {
	sp, err := skia.ParseName(skiaName)
	if err != nil {
		return manifest.PackageName{}, false, err
	}
	attrs, err := src.Attributes(ctx, key)
	if err != nil {
		return manifest.PackageName{}, false, err
	}
	md := attrs.Metadata
	if a := md[skia.MetaAppName]; a != "" && a != sp.App {
		return manifest.PackageName{}, false, fmt.Errorf("its %s is %q, its name says %s", skia.MetaAppName, a, sp.App)
	}
	if h := strings.ToLower(md[skia.MetaHash]); h != "" && !strings.HasPrefix(h, sp.Commit) && !strings.HasPrefix(sp.Commit, h) {
		return manifest.PackageName{}, false, fmt.Errorf("its %s is %q, its name says %s", skia.MetaHash, h, sp.Commit)
	}
	meta := manifest.PackageMeta{App: sp.App, Commit: sp.Commit, Built: sp.Built, User: sp.User, Host: sp.Host, Note: md[skia.MetaNote], Format: manifest.FormatDeb}
	if h := strings.ToLower(md[skia.MetaHash]); len(h) > len(meta.Commit) {
		meta.Commit = h // the full commit
	}
	if u := md[skia.MetaUserID]; u != "" {
		meta.User, meta.Host, _ = strings.Cut(u, "@")
	}
	if d := md[skia.MetaDirty]; d != "" {
		if meta.Dirty, err = strconv.ParseBool(d); err != nil {
			return manifest.PackageName{}, false, fmt.Errorf("its %s is %q, not true or false", skia.MetaDirty, d)
		}
	}
	if s := md[skia.MetaDateTime]; s != "" {
		if t, err := time.Parse(time.RFC3339, s); err != nil || !t.Equal(sp.Built) {
			return manifest.PackageName{}, false, fmt.Errorf("its %s is %q, its name says %s", skia.MetaDateTime, s, sp.Built.Format(time.RFC3339))
		}
	}
	p, err := sp.PackageName(meta.Dirty)
	if err != nil {
		return manifest.PackageName{}, false, err
	}
	if s := md[skia.MetaServices]; s != "" {
		note("%s: services %s are not carried over: the .deb's maintainer scripts restart them", key, s)
	}
	if _, err := to.StatPackage(ctx, p); err == nil {
		return p, false, nil
	} else if !errors.Is(err, blobstore.ErrNotFound) {
		return manifest.PackageName{}, false, err
	}
	r, err := src.NewReader(ctx, key, nil)
	if err != nil {
		return manifest.PackageName{}, false, err
	}
	defer r.Close()
	pw, err := to.NewPackageWriter(ctx, p, meta)
	if err != nil {
		return manifest.PackageName{}, false, err
	}
	if _, err := io.Copy(pw, r); err != nil {
		pw.Abort()
		return manifest.PackageName{}, false, fmt.Errorf("copy: %w", err)
	}
	if err := pw.Close(); err != nil {
		return manifest.PackageName{}, false, err
	}
	return p, true, nil
}

// importConfig writes a push config allowing each imported server the apps
// its manifest runs, when to has none.
func importConfig(ctx context.Context, to *blobstore.Store, servers map[string]*manifest.Manifest, user string, note func(string, ...any)) error {
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
	for host, m := range servers {
		apps := []string{}
		for _, e := range m.Packages {
			apps = append(apps, e.Package.App)
		}
		c.Servers[host] = apps
	}
	w := fleet.New(to, fleet.Options{})
	if _, err := w.PutConfig(ctx, user, c, ""); err != nil {
		if errors.Is(err, blobstore.ErrConflict) {
			return nil // another writer made one first: it rules
		}
		return fmt.Errorf("push config: %w", err)
	}
	note("%s written: each imported server may run the apps it runs now (edit it to allow more)", blobstore.PushConfigKey)
	return nil
}
