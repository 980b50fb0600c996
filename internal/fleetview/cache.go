package fleetview

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
)

// Bucket is what pushui needs from the bucket; *blobstore.Store is the
// implementation. Tests wrap a real Store to count requests.
type Bucket interface {
	ReadManifest(ctx context.Context, t manifest.Target) (*manifest.Manifest, blobstore.Version, error)
	ReadStatus(ctx context.Context, server string) (*manifest.Status, error)
	ListManifests(ctx context.Context, kind manifest.Kind) ([]blobstore.Listed, error)
	ListStatuses(ctx context.Context) ([]blobstore.Listed, error)
	ListPackageNames(ctx context.Context, app string) ([]manifest.PackageName, error)
	StatPackage(ctx context.Context, name manifest.PackageName) (blobstore.PackageInfo, error)
	StatPackages(ctx context.Context, names []manifest.PackageName) ([]blobstore.PackageInfo, error)
	ListAudit(ctx context.Context, t manifest.Target, limit int) ([]*manifest.AuditRecord, error)
}

var _ Bucket = (*blobstore.Store)(nil)

// readConcurrency bounds the bucket requests a refresh has in flight.
const readConcurrency = 16

// describedPerApp is how many of each app's newest packages a refresh
// knows the metadata of (once each: packages are immutable).
const describedPerApp = 20

// Server is what the cache knows about one server. It is immutable
// once stored: updates store a new value.
type Server struct {
	Name        string
	Manifest    *manifest.Manifest // nil when it could not be read
	Version     blobstore.Version  // "" when the manifest does not exist
	ManifestErr string             // why Manifest is nil (invalid, or a bucket error)
	Status      *manifest.Status   // nil when pulld has not reported (or StatusErr)
	StatusErr   string
	gen         uint64 // cache generation of the update that stored it
	// statusDigest and statusModified are the status object's, as listed
	// when it was read: a refresh reads it again only when the digest
	// changed, and moves its time on with the listing when the time came
	// from the object (pulld's heartbeat).
	statusDigest   string
	statusModified time.Time
}

// Group is what the cache knows about one group's manifest. It is
// immutable once stored.
type Group struct {
	Name        string
	Manifest    *manifest.Manifest // nil when it could not be read or does not exist
	Version     blobstore.Version  // "" when the manifest does not exist
	ManifestErr string
	gen         uint64
}

// App is the listing of one app's packages, newest first. Immutable
// once stored.
type App struct {
	Names []manifest.PackageName
	Err   string
	gen   uint64
}

// State is one published view of the bucket. Readers load it without
// locks; writers copy it, change the copy and publish that.
type State struct {
	Servers map[string]*Server
	Order   []string // sorted server names: configured ∪ with a manifest ∪ with a status
	Groups  map[string]*Group
	// GroupOrder is the sorted group names: configured ∪ with a manifest ∪
	// named by a host's status.
	GroupOrder []string
	// byGroup lists, per group, the servers whose status names it, in
	// Order; index builds it whenever servers change.
	byGroup map[string][]string
	Apps    map[string]*App
	AsOf    time.Time // when the last full refresh finished
	// gen is the cache generation this state was published at: it moves
	// when anything a page shows changed (a write, or a refresh that read
	// a changed document or saw one come or go), not on a heartbeat.
	gen uint64
}

// View holds the bucket as pushui last saw it: every server's manifest and
// status and every app's package names (refreshed as a whole by refresh,
// per server and per app by the pages that need fresh data), and package
// metadata, which is kept forever because packages are immutable. It is
// safe for concurrent use.
type View struct {
	b    Bucket
	conf func() *manifest.PushConfig // the push config in force
	log  *slog.Logger
	now  func() time.Time

	refreshing sync.Mutex // one full refresh at a time

	mu  sync.Mutex // serialises writers of cur
	gen uint64     // bumped by every writer, under mu
	cur atomic.Pointer[State]

	metaMu sync.Mutex
	meta   map[string]blobstore.PackageInfo // by package name
}

func New(b Bucket, conf func() *manifest.PushConfig, log *slog.Logger, now func() time.Time) *View {
	c := &View{b: b, conf: conf, log: log, now: now, meta: make(map[string]blobstore.PackageInfo)}
	c.cur.Store(&State{Servers: map[string]*Server{}, Groups: map[string]*Group{}, Apps: map[string]*App{}})
	return c
}

// Replace publishes st as the whole state, after indexing it: for tests
// and benchmarks that build a fleet in memory.
func (c *View) Replace(st *State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st.index()
	c.cur.Store(st)
}

// Load returns the current state. Callers must not modify it.
func (c *View) Load() *State { return c.cur.Load() }

// ForEach calls fn(i) for i in [0,n) with at most limit calls in flight.
func ForEach(n, limit int, fn func(i int)) {
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(i)
		})
	}
	wg.Wait()
}

// Refresh lists the bucket again: the servers' and groups' manifests and
// the statuses, each listing carrying every document's version and digest,
// and reads only the documents that changed since the last refresh (a
// status rewritten as a heartbeat has not changed; its time moves on with
// the listing). So a refresh of an unchanged fleet costs its listings, one
// request per thousand documents, and one package listing per app,
// whatever the number of hosts (metadata already known is not fetched
// again). Per-document read errors are kept in the state and shown; only
// a failed listing fails the refresh, leaving the previous state. Entries
// updated while the refresh ran are kept, so a refresh never puts back a
// manifest older than one pushui just wrote.
func (c *View) Refresh(ctx context.Context) error {
	c.refreshing.Lock()
	defer c.refreshing.Unlock()
	return c.refreshLocked(ctx)
}

// RefreshIfOlder refreshes unless the last full refresh finished less than
// age ago; concurrent callers share one refresh. Live pages call it, so
// that a fleet watched by many viewers costs one refresh per age, and an
// unwatched one nothing.
func (c *View) RefreshIfOlder(ctx context.Context, age time.Duration) error {
	if c.now().Sub(c.Load().AsOf) < age {
		return nil
	}
	c.refreshing.Lock()
	defer c.refreshing.Unlock()
	if c.now().Sub(c.Load().AsOf) < age {
		return nil // done by the caller we waited for
	}
	return c.refreshLocked(ctx)
}

func (c *View) refreshLocked(ctx context.Context) error {
	c.mu.Lock()
	startGen := c.gen
	c.mu.Unlock()
	prev := c.Load()

	listed, err := c.b.ListManifests(ctx, manifest.KindServer)
	if err != nil {
		return fmt.Errorf("pushui: list servers: %w", err)
	}
	statuses, err := c.b.ListStatuses(ctx)
	if err != nil {
		return fmt.Errorf("pushui: list statuses: %w", err)
	}
	listedGroups, err := c.b.ListManifests(ctx, manifest.KindGroup)
	if err != nil {
		return fmt.Errorf("pushui: list groups: %w", err)
	}
	manifests, reports := byName(listed), byName(statuses)
	names := c.conf().ServerNames()
	for _, l := range slices.Concat(listed, statuses) {
		names = append(names, l.Name)
	}
	slices.Sort(names)
	names = slices.Compact(names)

	servers := make([]*Server, len(names))
	ForEach(len(names), readConcurrency, func(i int) {
		name := names[i]
		servers[i] = c.readServerIfChanged(ctx, name, prev.Servers[name], manifests[name], reports[name])
	})
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pushui: refresh: %w", err)
	}

	groupManifests := byName(listedGroups)
	groupNames := make([]string, 0, len(listedGroups))
	for _, l := range listedGroups {
		groupNames = append(groupNames, l.Name)
	}
	groupNames = append(groupNames, c.conf().GroupNames()...)
	for _, s := range servers {
		if s.Status != nil {
			groupNames = append(groupNames, s.Status.GroupNames()...)
		}
	}
	slices.Sort(groupNames)
	groupNames = slices.Compact(groupNames)
	groups := make([]*Group, len(groupNames))
	ForEach(len(groupNames), readConcurrency, func(i int) {
		name := groupNames[i]
		l, old := groupManifests[name], prev.Groups[name]
		switch {
		case l == nil:
			groups[i] = &Group{Name: name} // no manifest
		case old != nil && old.Version == l.Version:
			groups[i] = &Group{Name: name, Manifest: old.Manifest, Version: old.Version, ManifestErr: old.ManifestErr}
		default:
			groups[i] = c.readGroup(ctx, name)
		}
	})

	appSet := map[string]bool{}
	for _, apps := range c.conf().Servers {
		for _, a := range apps {
			appSet[a] = true
		}
	}
	for _, apps := range c.conf().Groups {
		for _, a := range apps {
			appSet[a] = true
		}
	}
	for _, s := range servers {
		if s.Manifest != nil {
			for _, a := range s.Manifest.Apps() {
				appSet[a] = true
			}
		}
	}
	for _, g := range groups {
		if g.Manifest != nil {
			for _, a := range g.Manifest.Apps() {
				appSet[a] = true
			}
		}
	}
	appNames := make([]string, 0, len(appSet))
	for a := range appSet {
		appNames = append(appNames, a)
	}
	apps := make([]*App, len(appNames))
	ForEach(len(appNames), readConcurrency, func(i int) {
		apps[i] = c.listApp(ctx, appNames[i])
		// The newest builds' metadata (notes, commits), for the labels:
		// fetched once per package, which never changes.
		c.describe(ctx, apps[i].Names[:min(len(apps[i].Names), describedPerApp)])
	})

	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.Load()
	st := &State{Servers: make(map[string]*Server, len(names)), Order: names, Apps: make(map[string]*App, len(appNames)), AsOf: c.now(),
		Groups: make(map[string]*Group, len(groupNames)), GroupOrder: groupNames}
	for _, s := range servers {
		st.Servers[s.Name] = s
	}
	for _, g := range groups {
		st.Groups[g.Name] = g
	}
	for i, a := range apps {
		st.Apps[appNames[i]] = a
	}
	// Keep what was updated while this refresh read the bucket.
	for name, s := range old.Servers {
		if s.gen > startGen {
			if _, known := st.Servers[name]; !known {
				st.Order = insertSorted(st.Order, name)
			}
			st.Servers[name] = s
		}
	}
	for name, a := range old.Apps {
		if a.gen > startGen {
			st.Apps[name] = a
		}
	}
	for name, g := range old.Groups {
		if g.gen > startGen {
			if _, known := st.Groups[name]; !known {
				st.GroupOrder = insertSorted(st.GroupOrder, name)
			}
			st.Groups[name] = g
		}
	}
	st.index()
	if changed(old, st) {
		c.gen++
	}
	st.gen = c.gen
	c.cur.Store(st)
	return nil
}

// sameServer reports whether a and b show the same: manifest version,
// errors and status, apart from the status's time (a heartbeat).
func sameServer(a, b *Server) bool {
	if a.Version != b.Version || a.ManifestErr != b.ManifestErr || a.StatusErr != b.StatusErr || (a.Status == nil) != (b.Status == nil) {
		return false
	}
	if a.Status == nil {
		return true
	}
	sa, sb := *a.Status, *b.Status
	sa.Time, sb.Time = time.Time{}, time.Time{}
	return bytes.Equal(sa.Marshal(), sb.Marshal())
}

// changed reports whether next shows anything prev does not: a server,
// group or app that came or went, or a document with another version,
// digest or error. A heartbeat (the same status bytes written again) is
// no change.
func changed(prev, next *State) bool {
	if !slices.Equal(prev.Order, next.Order) || !slices.Equal(prev.GroupOrder, next.GroupOrder) || len(prev.Apps) != len(next.Apps) {
		return true
	}
	for name, n := range next.Servers {
		p := prev.Servers[name]
		if p == nil || p.Version != n.Version || p.ManifestErr != n.ManifestErr || p.statusDigest != n.statusDigest ||
			p.StatusErr != n.StatusErr || (p.Status == nil) != (n.Status == nil) {
			return true
		}
	}
	for name, n := range next.Groups {
		if p := prev.Groups[name]; p == nil || p.Version != n.Version || p.ManifestErr != n.ManifestErr {
			return true
		}
	}
	for name, n := range next.Apps {
		if p := prev.Apps[name]; p == nil || p.Err != n.Err || !slices.Equal(p.Names, n.Names) {
			return true
		}
	}
	return false
}

// readGroup reads one group's manifest; errors are recorded in the result.
func (c *View) readGroup(ctx context.Context, name string) *Group {
	g := &Group{Name: name}
	m, v, err := c.b.ReadManifest(ctx, manifest.Group(name))
	g.Version = v
	switch {
	case err != nil:
		g.ManifestErr = err.Error()
		c.log.Warn("manifest unreadable", "group", name, "err", err)
	case v != "":
		g.Manifest = m
	}
	return g
}

// RefreshGroup reads one group again and stores the result.
func (c *View) RefreshGroup(ctx context.Context, name string) *Group {
	g := c.readGroup(ctx, name)
	c.storeGroup(g)
	return g
}

// storeGroup publishes g as the group's state.
// Storing what the cache already holds changes nothing (nor the
// generation, so that a page re-reading its group does not make every live
// page reload).
func (c *View) storeGroup(g *Group) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.Load().Groups[g.Name]; old != nil && old.Version == g.Version && old.ManifestErr == g.ManifestErr {
		return
	}
	c.gen++
	g.gen = c.gen
	st := *c.Load()
	st.Groups = with(st.Groups, g.Name, g, &st.GroupOrder)
	st.gen = c.gen
	c.cur.Store(&st)
}

// GroupNames returns every group known: in the cache (with a manifest or
// named by a host) or in conf, sorted.
func (st *State) GroupNames(conf *manifest.PushConfig) []string {
	names := slices.Clone(st.GroupOrder)
	names = append(names, conf.GroupNames()...)
	slices.Sort(names)
	return slices.Compact(names)
}

// Members returns the servers whose status names group, sorted: a host
// that joins appears once it reports, without configuration. Callers must
// not modify the result.
func (st *State) Members(group string) []string { return st.byGroup[group] }

// index builds st.byGroup from the servers' statuses: one pass over the
// fleet per change of a server, so that group pages and summaries do not
// each scan it.
func (st *State) index() {
	st.byGroup = map[string][]string{}
	for _, name := range st.Order {
		if s := st.Servers[name]; s != nil && s.Status != nil {
			for _, g := range s.Status.Groups {
				st.byGroup[g.Name] = append(st.byGroup[g.Name], name)
			}
		}
	}
}

// InGroup reports whether server's status names group.
func (st *State) InGroup(server, group string) bool {
	s := st.Servers[server]
	return s != nil && s.Status != nil && s.Status.InGroup(group)
}

// byName indexes a listing by name.
func byName(docs []blobstore.Listed) map[string]*blobstore.Listed {
	m := make(map[string]*blobstore.Listed, len(docs))
	for i := range docs {
		m[docs[i].Name] = &docs[i]
	}
	return m
}

// readServerIfChanged returns name's state, reading from the bucket only
// what changed since old by its listing entries (nil: the document does
// not exist): the manifest when its version changed, the status when its
// digest changed.
func (c *View) readServerIfChanged(ctx context.Context, name string, old *Server, m, st *blobstore.Listed) *Server {
	s := &Server{Name: name}
	switch {
	case m == nil:
		s.Manifest = &manifest.Manifest{} // no manifest: an empty one, as ReadManifest gives
	case old != nil && old.Version == m.Version:
		s.Manifest, s.Version, s.ManifestErr = old.Manifest, old.Version, old.ManifestErr
	default:
		c.readManifest(ctx, s)
	}
	switch {
	case st == nil:
	case old != nil && old.Status != nil && old.statusDigest != "" && old.statusDigest == st.Digest:
		cp := *old.Status
		if cp.Time.Sub(old.statusModified).Abs() < time.Second {
			// The time came from the object (a GET's Last-Modified has
			// whole seconds, a listing's may not): this is a heartbeat,
			// the same bytes written again.
			cp.Time = st.Modified.UTC()
		}
		s.Status, s.statusDigest, s.statusModified = &cp, st.Digest, st.Modified.UTC()
	default:
		c.readStatus(ctx, s)
		s.statusDigest, s.statusModified = st.Digest, st.Modified.UTC()
	}
	return s
}

// readServer reads one server's manifest and status. Errors are recorded
// in the result, not returned: one broken server must not hide the others.
func (c *View) readServer(ctx context.Context, name string) *Server {
	s := &Server{Name: name}
	c.readManifest(ctx, s)
	c.readStatus(ctx, s)
	return s
}

// readManifest reads s's manifest into s.
func (c *View) readManifest(ctx context.Context, s *Server) {
	m, v, err := c.b.ReadManifest(ctx, manifest.Server(s.Name))
	s.Version = v
	if err != nil {
		s.ManifestErr = err.Error()
		c.log.Warn("manifest unreadable", "server", s.Name, "err", err)
	} else {
		s.Manifest = m
	}
}

// readStatus reads s's status into s.
func (c *View) readStatus(ctx context.Context, s *Server) {
	st, err := c.b.ReadStatus(ctx, s.Name)
	if err == nil {
		// A status from the future is shown as what it is, never as
		// serving (nor as a member of its groups).
		err = st.CheckTimes(c.now())
	}
	switch {
	case errors.Is(err, blobstore.ErrNotFound):
	case err != nil:
		s.StatusErr = err.Error()
	default:
		s.Status = st
	}
}

// listApp lists one app's package names.
func (c *View) listApp(ctx context.Context, app string) *App {
	names, err := c.b.ListPackageNames(ctx, app)
	if err != nil {
		c.log.Warn("package listing failed", "app", app, "err", err)
		return &App{Err: err.Error()}
	}
	return &App{Names: names}
}

// RefreshServer reads one server again and stores the result.
func (c *View) RefreshServer(ctx context.Context, name string) *Server {
	s := c.readServer(ctx, name)
	c.storeServer(s)
	return s
}

// storeServer publishes s as the server's state.
// A server that shows the same as before apart from its status's time (a
// heartbeat) is stored without moving the generation (see storeGroup).
func (c *View) storeServer(s *Server) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.Load().Servers[s.Name]; old != nil && sameServer(old, s) {
		s.gen = old.gen
	} else {
		c.gen++
		s.gen = c.gen
	}
	st := *c.Load()
	st.Servers = with(st.Servers, s.Name, s, &st.Order)
	st.index()
	st.gen = c.gen
	c.cur.Store(&st)
}

// StoreManifest records a manifest pushui has just written: a server's,
// keeping its last status, or a group's.
func (c *View) StoreManifest(t manifest.Target, m *manifest.Manifest, v blobstore.Version) {
	if t.IsGroup() {
		c.storeGroup(&Group{Name: t.Name, Manifest: m, Version: v})
		return
	}
	server := t.Name
	s := &Server{Name: server, Manifest: m, Version: v}
	if old := c.Load().Servers[server]; old != nil {
		s.Status, s.StatusErr = old.Status, old.StatusErr
	}
	c.storeServer(s)
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

// with returns a copy of m with m[name] = v and, when order is not nil,
// replaces *order (sorted names) by a copy with name inserted if it is
// new: how a writer of the published state changes one entry without
// touching what readers hold.
func with[T any](m map[string]T, name string, v T, order *[]string) map[string]T {
	out := maps.Clone(m)
	if out == nil {
		out = map[string]T{}
	}
	if _, known := m[name]; !known && order != nil {
		*order = insertSorted(slices.Clone(*order), name)
	}
	out[name] = v
	return out
}

func insertSorted(s []string, v string) []string {
	i, found := slices.BinarySearch(s, v)
	if found {
		return s
	}
	return slices.Insert(s, i, v)
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
