package fleetview

import (
	"context"
	"fmt"
	"slices"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
)

// listApp lists one app's package names.
func (c *View) listApp(ctx context.Context, app string) *App {
	names, err := c.b.ListPackageNames(ctx, app)
	if err != nil {
		c.log.Warn("package listing failed", "app", app, "err", err)
		return &App{Err: err.Error()}
	}
	return &App{Names: names}
}

// storeApp publishes an app's listing.
// Storing what the cache already holds changes nothing (see storeGroup).
func (c *View) storeApp(app string, a *App) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.Load().Apps[app]; old != nil && old.Err == a.Err && slices.Equal(old.Names, a.Names) {
		return
	}
	c.gen++
	a.gen = c.gen
	st := *c.Load()
	st.Apps = with(st.Apps, app, a, nil)
	st.gen = c.gen
	c.cur.Store(&st)
}

// Package is one package of a listing with its metadata, or why the metadata
// could not be read.
type Package struct {
	blobstore.PackageInfo
	Err error
}

// Labels returns a labeller for one page that names packages with the
// metadata the cache holds (release notes, commit links), asking the
// Bucket nothing.
func (c *View) Labels() *Labels {
	l := NewLabels()
	l.meta = func(p manifest.PackageName) (manifest.PackageMeta, bool) {
		c.metaMu.Lock()
		defer c.metaMu.Unlock()
		info, ok := c.meta[p.String()]
		return info.Meta, ok
	}
	return l
}

// Packages lists app's packages again (one listing request) and returns
// them newest first with their metadata. Metadata already known comes from
// memory; the rest is fetched concurrently in one blobstore.StatPackages
// call and kept forever. When that batch fails (one package with broken
// metadata fails it whole), the missing ones are fetched one by one,
// concurrently, so one bad package does not hide the others.
func (c *View) Packages(ctx context.Context, app string) ([]Package, error) {
	names, err := c.b.ListPackageNames(ctx, app)
	if err != nil {
		return nil, fmt.Errorf("pushui: list packages of %s: %w", app, err)
	}
	c.storeApp(app, &App{Names: names})
	return c.describe(ctx, names), nil
}

// describe returns the metadata of names, in order, fetching what is not
// cached.
func (c *View) describe(ctx context.Context, names []manifest.PackageName) []Package {
	out := make([]Package, len(names))
	var missing []manifest.PackageName
	var missingAt []int
	c.metaMu.Lock()
	for i, n := range names {
		if info, ok := c.meta[n.String()]; ok {
			out[i].PackageInfo = info
		} else {
			missing = append(missing, n)
			missingAt = append(missingAt, i)
		}
	}
	c.metaMu.Unlock()
	if len(missing) == 0 {
		return out
	}
	infos, err := c.b.StatPackages(ctx, missing)
	errs := make([]error, len(missing))
	if err != nil {
		infos = make([]blobstore.PackageInfo, len(missing))
		ForEach(len(missing), readConcurrency, func(i int) {
			infos[i], errs[i] = c.b.StatPackage(ctx, missing[i])
		})
	}
	c.metaMu.Lock()
	defer c.metaMu.Unlock()
	for j, i := range missingAt {
		if errs[j] != nil {
			out[i] = Package{PackageInfo: blobstore.PackageInfo{Name: missing[j]}, Err: errs[j]}
			continue
		}
		c.meta[missing[j].String()] = infos[j]
		out[i].PackageInfo = infos[j]
	}
	return out
}

// Stat returns one package's description, from memory when known. The
// error wraps blobstore.ErrNotFound when the package does not exist.
func (c *View) Stat(ctx context.Context, name manifest.PackageName) (blobstore.PackageInfo, error) {
	c.metaMu.Lock()
	info, ok := c.meta[name.String()]
	c.metaMu.Unlock()
	if ok {
		return info, nil
	}
	info, err := c.b.StatPackage(ctx, name)
	if err != nil {
		return blobstore.PackageInfo{}, err
	}
	c.metaMu.Lock()
	c.meta[name.String()] = info
	c.metaMu.Unlock()
	return info, nil
}
