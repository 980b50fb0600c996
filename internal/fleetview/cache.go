package fleetview

import (
	"context"
	"errors"
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
