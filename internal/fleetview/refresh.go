package fleetview

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
)

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

	l, err := c.list(ctx)
	if err != nil {
		return err
	}
	servers := c.readServers(ctx, prev, l)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pushui: refresh: %w", err)
	}
	groups := c.readGroups(ctx, prev, l, servers)
	apps := c.listApps(ctx, servers, groups)
	c.publish(startGen, servers, groups, apps)
	return nil
}

// listing is what a refresh lists: the manifests of servers and groups
// and the statuses, by name.
type listing struct {
	servers, statuses, groups map[string]*blobstore.Listed
	names                     []string // servers: configured ∪ with a manifest ∪ with a status, sorted
}

func (c *View) list(ctx context.Context) (listing, error) {
	listed, err := c.b.ListManifests(ctx, manifest.KindServer)
	if err != nil {
		return listing{}, fmt.Errorf("pushui: list servers: %w", err)
	}
	statuses, err := c.b.ListStatuses(ctx)
	if err != nil {
		return listing{}, fmt.Errorf("pushui: list statuses: %w", err)
	}
	groups, err := c.b.ListManifests(ctx, manifest.KindGroup)
	if err != nil {
		return listing{}, fmt.Errorf("pushui: list groups: %w", err)
	}
	names := c.conf().ServerNames()
	for _, d := range slices.Concat(listed, statuses) {
		names = append(names, d.Name)
	}
	slices.Sort(names)
	return listing{servers: byName(listed), statuses: byName(statuses), groups: byName(groups), names: slices.Compact(names)}, nil
}

// readServers reads every listed server's documents that changed since
// prev.
func (c *View) readServers(ctx context.Context, prev *State, l listing) []*Server {
	servers := make([]*Server, len(l.names))
	ForEach(len(l.names), readConcurrency, func(i int) {
		name := l.names[i]
		servers[i] = c.readServerIfChanged(ctx, name, prev.Servers[name], l.servers[name], l.statuses[name])
	})
	return servers
}

// readGroups reads the manifests that changed since prev of every group
// known: listed, configured, or named by a server's status.
func (c *View) readGroups(ctx context.Context, prev *State, l listing, servers []*Server) []*Group {
	names := make([]string, 0, len(l.groups))
	for name := range l.groups {
		names = append(names, name)
	}
	names = append(names, c.conf().GroupNames()...)
	for _, s := range servers {
		if s.Status != nil {
			names = append(names, s.Status.GroupNames()...)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	groups := make([]*Group, len(names))
	ForEach(len(names), readConcurrency, func(i int) {
		name := names[i]
		listed, old := l.groups[name], prev.Groups[name]
		switch {
		case listed == nil:
			groups[i] = &Group{Name: name} // no manifest
		case old != nil && old.Version == listed.Version:
			groups[i] = &Group{Name: name, Manifest: old.Manifest, Version: old.Version, ManifestErr: old.ManifestErr}
		default:
			groups[i] = c.readGroup(ctx, name)
		}
	})
	return groups
}

// listApps lists the packages of every app the push config or a manifest
// names, and fetches the metadata of each app's newest builds (once per
// package: packages never change).
func (c *View) listApps(ctx context.Context, servers []*Server, groups []*Group) map[string]*App {
	set := map[string]bool{}
	for _, lists := range []map[string][]string{c.conf().Servers, c.conf().Groups} {
		for _, apps := range lists {
			for _, a := range apps {
				set[a] = true
			}
		}
	}
	var docs []*manifest.Manifest
	for _, s := range servers {
		docs = append(docs, s.Manifest)
	}
	for _, g := range groups {
		docs = append(docs, g.Manifest)
	}
	for _, m := range docs {
		if m != nil {
			for _, a := range m.Apps() {
				set[a] = true
			}
		}
	}
	names := slices.Collect(maps.Keys(set))
	listed := make([]*App, len(names))
	ForEach(len(names), readConcurrency, func(i int) {
		listed[i] = c.listApp(ctx, names[i])
		c.describe(ctx, listed[i].Names[:min(len(listed[i].Names), describedPerApp)])
	})
	apps := make(map[string]*App, len(names))
	for i, a := range listed {
		apps[names[i]] = a
	}
	return apps
}

// publish stores what a refresh read as the new state, keeping every
// entry updated since the refresh began (generation startGen): a refresh
// never puts back a manifest older than one just written.
func (c *View) publish(startGen uint64, servers []*Server, groups []*Group, apps map[string]*App) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.Load()
	st := &State{Servers: make(map[string]*Server, len(servers)), Apps: apps, AsOf: c.now(),
		Groups: make(map[string]*Group, len(groups))}
	for _, s := range servers {
		st.Servers[s.Name] = s
		st.Order = append(st.Order, s.Name)
	}
	for _, g := range groups {
		st.Groups[g.Name] = g
		st.GroupOrder = append(st.GroupOrder, g.Name)
	}
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
