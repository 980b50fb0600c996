package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"

	"github.com/pushpull/pushpull/internal/backoff"
	"github.com/pushpull/pushpull/manifest"
)

// The top-level folders of the bucket (docs/design.md, "The bucket").
const (
	PackagesPrefix = "packages/"
	ServersPrefix  = "servers/"
	GroupsPrefix   = "groups/"
	StatusPrefix   = "status/"
	AuditPrefix    = "audit/"
	ConfigPrefix   = "config/"
	RolloutsPrefix = "rollouts/"
	uploadsPrefix  = "uploads/" // packages being streamed in, before they are sealed; write probes
)

// PushConfigKey is where the push config lives: every program that
// changes desired state reads it from here, so replicas of pushui and
// release in a pipeline all obey the same one.
const PushConfigKey = ConfigPrefix + "push.json"

// configAuditPrefix holds the audit records of push config changes.
const configAuditPrefix = ConfigPrefix + "audit/"

// ManifestKey returns the key of t's manifest, servers/{server}.json or
// groups/{group}.json, after checking the name.
func ManifestKey(t manifest.Target) (string, error) {
	if err := t.Check(); err != nil {
		return "", fmt.Errorf("blobstore: %w", err)
	}
	if t.IsGroup() {
		return GroupsPrefix + t.Name + ".json", nil
	}
	return ServersPrefix + t.Name + ".json", nil
}

// StatusKey returns status/{server}.json, after checking the name.
func StatusKey(server string) (string, error) {
	if err := manifest.CheckName("server", server); err != nil {
		return "", fmt.Errorf("blobstore: %w", err)
	}
	return StatusPrefix + server + ".json", nil
}

// PackageKey returns packages/{app}/{file} for a package name. A
// PackageName that parsed or was built by NewPackageName has valid parts.
func PackageKey(p manifest.PackageName) string { return PackagesPrefix + p.String() }

// ReadManifest reads and validates t's manifest. A missing manifest
// is an empty one with Version "". An invalid one, or one larger than
// MaxDocumentSize, is an error wrapping manifest.ErrInvalidManifest,
// returned with its Version so callers can report which version they
// refused (and not read it again until it changes).
func (s *Store) ReadManifest(ctx context.Context, t manifest.Target) (*manifest.Manifest, Version, error) {
	key, err := ManifestKey(t)
	if err != nil {
		return nil, "", err
	}
	data, v, err := s.Read(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return &manifest.Manifest{}, "", nil
	}
	if errors.Is(err, ErrTooLarge) {
		v, verr := s.d.stat(ctx, key)
		if verr != nil {
			return nil, "", verr
		}
		return nil, v, fmt.Errorf("%w: %w", manifest.ErrInvalidManifest, err)
	}
	if err != nil {
		return nil, "", err
	}
	m, err := manifest.Parse(data)
	if err != nil {
		return nil, v, fmt.Errorf("blobstore: %s: %w", key, err)
	}
	return m, v, nil
}

// ChangedManifest is Changed for t's manifest.
func (s *Store) ChangedManifest(ctx context.Context, t manifest.Target, since Version) (bool, Version, error) {
	key, err := ManifestKey(t)
	if err != nil {
		return false, "", err
	}
	return s.Changed(ctx, key, since)
}

// writeManifest validates m, increments m.Revision and writes it in
// canonical form, only if the manifest's current Version is ifVersion (""
// for a manifest that must not exist yet). On ErrConflict m.Revision is
// left incremented; re-read before retrying. Every manifest write goes
// through it from UpdateManifest or UpdateManifestAt.
func (s *Store) writeManifest(ctx context.Context, t manifest.Target, m *manifest.Manifest, ifVersion Version) (Version, error) {
	key, err := ManifestKey(t)
	if err != nil {
		return "", err
	}
	if err := m.Validate(); err != nil {
		return "", fmt.Errorf("blobstore: %s: %w", key, err)
	}
	m.Revision++
	return s.Write(ctx, key, m.Marshal(), ifVersion)
}

// maxUpdateTries bounds UpdateManifest's retries under contention.
const maxUpdateTries = 20

// ManifestUpdate is what UpdateManifest did.
type ManifestUpdate struct {
	Before  *manifest.Manifest // the manifest as read (empty when it did not exist)
	After   *manifest.Manifest // the manifest as stored now; Before when nothing changed
	Version Version            // of After
	Existed bool               // whether the manifest existed before
	Changed bool               // whether anything was written
}

// UpdateManifest applies fn to a copy of t's current manifest and
// writes the result conditionally on the version read, re-reading and
// re-applying fn when another writer got there first (with a short backoff
// that ends with ctx). fn is told whether the manifest existed; it must be
// safe to call more than once, and when it returns an error nothing is
// written. When fn leaves an existing manifest unchanged nothing is
// written either; a manifest that did not exist is written even when empty,
// since an explicit empty manifest means something its absence does not.
// A manifest that does not parse is never overwritten.
//
// This is the mechanism only. Who may change what (the push config's
// allow-list), the audit record and the nudge are internal/fleet's, which
// every program that changes desired state goes through.
func (s *Store) UpdateManifest(ctx context.Context, t manifest.Target, fn func(m *manifest.Manifest, existed bool) error) (ManifestUpdate, error) {
	return s.updateManifest(ctx, t, pin{}, fn)
}

// UpdateManifestAt is UpdateManifest for an edit decided on what someone
// saw: it applies only while t's manifest is at version at ("" = it does
// not exist), and when it has moved on (before the read or under the
// write) nothing is written, fn is not re-applied and the error wraps
// ErrConflict. With overInvalid, a manifest that does not parse is
// replaced (fn starts from an empty one, told it did not exist), as a PUT
// of a whole manifest does.
func (s *Store) UpdateManifestAt(ctx context.Context, t manifest.Target, at Version, overInvalid bool, fn func(m *manifest.Manifest, existed bool) error) (ManifestUpdate, error) {
	return s.updateManifest(ctx, t, pin{set: true, at: at, overInvalid: overInvalid}, fn)
}

// Replace returns the update (for UpdateManifest or UpdateManifestAt)
// that makes the manifest a copy of m, whatever it held: a whole manifest
// written as a person writes one with an editor. The revision written is
// m's plus one. m is not modified.
func Replace(m *manifest.Manifest) func(*manifest.Manifest, bool) error {
	return func(cur *manifest.Manifest, _ bool) error {
		*cur = *m.Clone()
		return nil
	}
}

// pin is what UpdateManifestAt adds to UpdateManifest.
type pin struct {
	set         bool
	at          Version
	overInvalid bool
}

// updateManifest is the one read-apply-write loop of manifests.
func (s *Store) updateManifest(ctx context.Context, t manifest.Target, p pin, fn func(m *manifest.Manifest, existed bool) error) (ManifestUpdate, error) {
	for try := 1; try <= maxUpdateTries; try++ {
		cur, ver, err := s.ReadManifest(ctx, t)
		invalid := errors.Is(err, manifest.ErrInvalidManifest)
		switch {
		case invalid && p.set && p.overInvalid:
			cur = &manifest.Manifest{}
		case err != nil:
			return ManifestUpdate{}, err
		}
		if p.set && ver != p.at {
			return ManifestUpdate{}, fmt.Errorf("blobstore: manifest of %s changed since it was read: %w", t, ErrConflict)
		}
		existed := ver != "" && !invalid
		next := cur.Clone()
		if err := fn(next, existed); err != nil {
			return ManifestUpdate{}, err
		}
		u := ManifestUpdate{Before: cur, After: cur, Version: ver, Existed: existed}
		if u.Existed && string(next.Marshal()) == string(cur.Marshal()) {
			return u, nil
		}
		nv, err := s.writeManifest(ctx, t, next, ver)
		if errors.Is(err, ErrConflict) && !p.set {
			if err := backoff.Sleep(ctx, backoff.Jitter(backoff.Delay(try, time.Millisecond, 50*time.Millisecond))); err != nil {
				return ManifestUpdate{}, fmt.Errorf("blobstore: update manifest of %s: %w", t, err)
			}
			continue
		}
		if err != nil {
			return ManifestUpdate{}, err
		}
		u.After, u.Version, u.Changed = next, nv, true
		return u, nil
	}
	return ManifestUpdate{}, fmt.Errorf("blobstore: update manifest of %s: gave up after %d conflicting writers: %w", t, maxUpdateTries, ErrConflict)
}

// ReadPushConfig reads config/push.json. A missing config is nil with
// Version ""; an invalid one is an error, returned with its Version.
func (s *Store) ReadPushConfig(ctx context.Context) (*manifest.PushConfig, Version, error) {
	data, v, err := s.Read(ctx, PushConfigKey)
	if errors.Is(err, ErrNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	c, err := manifest.ParsePushConfig(data)
	if err != nil {
		return nil, v, fmt.Errorf("blobstore: %s: %w", PushConfigKey, err)
	}
	return c, v, nil
}

// ChangedPushConfig is Changed for config/push.json.
func (s *Store) ChangedPushConfig(ctx context.Context, since Version) (bool, Version, error) {
	return s.Changed(ctx, PushConfigKey, since)
}

// WritePushConfig validates c and writes it in canonical form, only if the
// stored config's Version is ifVersion ("" for a config that must not
// exist yet).
func (s *Store) WritePushConfig(ctx context.Context, c *manifest.PushConfig, ifVersion Version) (Version, error) {
	if err := c.Validate(); err != nil {
		return "", fmt.Errorf("blobstore: %s: %w", PushConfigKey, err)
	}
	return s.Write(ctx, PushConfigKey, c.Marshal(), ifVersion)
}

// Listed is one document of a folder's listing.
type Listed struct {
	// Name is the server's or group's name: the key is {folder}{Name}.json.
	Name string
	// Version is the document's Version, as Changed and Read give it.
	Version Version
	// Digest is the hex MD5 of its content, "" when the backend's listing
	// gives none (an S3 multipart upload, which pushpull never makes for
	// documents). Unlike a GCS generation, it is the same for two writes
	// of the same bytes, such as a status rewritten only as a heartbeat.
	Digest string
	// Modified is when the document was last written.
	Modified time.Time
}

// ListServers returns the servers that have a manifest, sorted.
func (s *Store) ListServers(ctx context.Context) ([]string, error) {
	return names(s.listDocuments(ctx, ServersPrefix, manifest.KindServer))
}

// ListGroups returns the groups that have a manifest, sorted.
func (s *Store) ListGroups(ctx context.Context) ([]string, error) {
	return names(s.listDocuments(ctx, GroupsPrefix, manifest.KindGroup))
}

// ListReporting returns the servers that have written a status, sorted: a
// host that joined a group has one before anyone writes it a manifest.
func (s *Store) ListReporting(ctx context.Context) ([]string, error) {
	return names(s.listDocuments(ctx, StatusPrefix, manifest.KindServer))
}

// ListManifests lists the manifests of kind (servers/ or groups/) with
// their versions, sorted by name: one listing request per thousand, and on
// GCS, S3 and mem:// no request per document, so a reader can fetch only
// the documents that changed since it last looked.
func (s *Store) ListManifests(ctx context.Context, kind manifest.Kind) ([]Listed, error) {
	if kind == manifest.KindGroup {
		return s.listDocuments(ctx, GroupsPrefix, kind)
	}
	return s.listDocuments(ctx, ServersPrefix, kind)
}

// ListStatuses lists status/ as ListManifests lists manifests. A status's
// Modified is its heartbeat: pulld rewrites an unchanged status with the
// same bytes (its Digest does not change), and readers take the time from
// the listing (ReadStatus fills Status.Time from the object).
func (s *Store) ListStatuses(ctx context.Context) ([]Listed, error) {
	return s.listDocuments(ctx, StatusPrefix, manifest.KindServer)
}

func names(docs []Listed, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.Name
	}
	return out, nil
}

// listDocuments lists the {name}.json objects directly under prefix whose
// names are valid for kind, sorted by name.
func (s *Store) listDocuments(ctx context.Context, prefix string, kind manifest.Kind) ([]Listed, error) {
	var out []Listed
	err := s.each(ctx, &blob.ListOptions{Prefix: prefix, Delimiter: "/"}, func(o *blob.ListObject) error {
		name, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, prefix), ".json")
		if !ok || o.IsDir || manifest.CheckName(string(kind), name) != nil {
			return nil
		}
		v, digest, err := s.d.listed(ctx, o)
		if errors.Is(err, ErrNotFound) || err == nil && v == "" {
			return nil // removed since it was listed
		}
		if err != nil {
			return err
		}
		out = append(out, Listed{Name: name, Version: v, Digest: digest, Modified: o.ModTime})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Listed) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// currentRolloutsPrefix holds one CurrentRollout per group env that ever
// had a rollout. "_current" can never be a group's name (names start with
// a letter or digit), so it shares rollouts/ with the records.
const currentRolloutsPrefix = RolloutsPrefix + "_current/"

// rolloutIDsPrefix holds one manifest.RolloutHome per rollout id ("_ids",
// like "_current", is no group's name).
const rolloutIDsPrefix = RolloutsPrefix + "_ids/"

// ClaimRolloutID records that rollout id lives in group env, only if no
// rollout has the id yet: the error wraps ErrConflict when one has, and the
// caller picks another id. Every rollout's id is claimed before its record
// is written, so ids are unique across groups and envs.
func (s *Store) ClaimRolloutID(ctx context.Context, ref RolloutRef) error {
	if _, err := ref.Key(); err != nil {
		return err
	}
	_, err := s.Write(ctx, rolloutIDsPrefix+ref.ID+".json", manifest.RolloutHome{Group: ref.Group, Env: ref.Env}.Marshal(), "")
	return err
}

// FindRollout returns the record of rollout id, wherever it is: from the
// id's claim (one read) or, for a rollout started before ids were claimed
// or whose claim does not parse, from a listing of every record. The error wraps ErrNotFound when no
// rollout has the id.
func (s *Store) FindRollout(ctx context.Context, id string) (RolloutRef, error) {
	if err := manifest.CheckName("rollout", id); err != nil {
		return RolloutRef{}, fmt.Errorf("blobstore: %w", err)
	}
	key := rolloutIDsPrefix + id + ".json"
	doc, err := s.d.read(ctx, key)
	switch {
	case err == nil:
		if h, err := manifest.ParseRolloutHome(doc.data); err == nil {
			return RolloutRef{Group: h.Group, Env: h.Env, ID: id}, nil
		}
		// A claim edited into nonsense is no claim: the records say.
	case !errors.Is(err, ErrNotFound):
		return RolloutRef{}, err
	}
	refs, err := s.ListRolloutRefs(ctx, "")
	if err != nil {
		return RolloutRef{}, err
	}
	for _, r := range refs {
		if r.ID == id {
			return r, nil
		}
	}
	return RolloutRef{}, fmt.Errorf("blobstore: no rollout %s: %w", id, ErrNotFound)
}

// RolloutRef names one rollout record, rollouts/{group}/{env}/{id}.json.
type RolloutRef struct{ Group, Env, ID string }

// Key returns the record's key, after checking the names.
func (r RolloutRef) Key() (string, error) {
	for _, n := range [][2]string{{"group", r.Group}, {"env", r.Env}, {"rollout", r.ID}} {
		if err := manifest.CheckName(n[0], n[1]); err != nil {
			return "", fmt.Errorf("blobstore: %w", err)
		}
	}
	return RolloutsPrefix + r.Group + "/" + r.Env + "/" + r.ID + ".json", nil
}

// RefOf returns the ref of a record: where it is stored.
func RefOf(r *manifest.RolloutRecord) RolloutRef {
	return RolloutRef{Group: r.Strategy.Group, Env: r.Strategy.Env, ID: r.ID}
}

// ReadRollout reads a rollout record and its Version; ErrNotFound when
// there is none. A record that does not parse, contradicts itself or
// names another group, env or ID than its key is an error (returned with
// the Version) naming the key and the reason.
func (s *Store) ReadRollout(ctx context.Context, ref RolloutRef) (*manifest.RolloutRecord, Version, error) {
	key, err := ref.Key()
	if err != nil {
		return nil, "", err
	}
	data, v, err := s.Read(ctx, key)
	if err != nil {
		return nil, "", err
	}
	r, err := manifest.ParseRolloutRecord(data)
	if err == nil && RefOf(r) != ref {
		err = fmt.Errorf("invalid rollout record: it is rollout %s of group %s env %s, not the one its key names", r.ID, r.Strategy.Group, r.Strategy.Env)
	}
	if err != nil {
		return nil, v, fmt.Errorf("blobstore: %s: %w", key, err)
	}
	return r, v, nil
}

// WriteRollout writes r if the record's current Version is ifVersion (""
// = it must not exist): its controller's lease and every step are
// conditional writes, so two controllers never both drive it.
func (s *Store) WriteRollout(ctx context.Context, r *manifest.RolloutRecord, ifVersion Version) (Version, error) {
	key, err := RefOf(r).Key()
	if err != nil {
		return "", err
	}
	return s.Write(ctx, key, r.Marshal(), ifVersion)
}

// SetAsideRollout moves the record at ref, whatever it holds, to the same
// key with ".invalid" added, where listings no longer see it and a person
// can still read it: how an invalid record is aborted. It returns the key
// it moved the record to.
func (s *Store) SetAsideRollout(ctx context.Context, ref RolloutRef) (string, error) {
	key, err := ref.Key()
	if err != nil {
		return "", err
	}
	data, _, err := s.Read(ctx, key)
	if err != nil {
		return "", err
	}
	aside := key + ".invalid"
	if err := s.Put(ctx, aside, data); err != nil {
		return "", err
	}
	return aside, s.d.delete(ctx, key)
}

// SetAside reports whether the record at ref was set aside
// (SetAsideRollout): one small request.
func (s *Store) SetAside(ctx context.Context, ref RolloutRef) (bool, error) {
	key, err := ref.Key()
	if err != nil {
		return false, err
	}
	v, err := s.d.stat(ctx, key+".invalid")
	return v != "", err
}

// ListedRollout is one record of a listing.
type ListedRollout struct {
	RolloutRef
	Record  *manifest.RolloutRecord // nil when Err is set
	Version Version
	// Err says why the record could not be read, or is invalid (as
	// ReadRollout reports it); the listing goes on past it.
	Err error
}

// MaxRolloutsPage bounds the records one ListRollouts call reads.
const MaxRolloutsPage = 1000

// ListRollouts returns a page of group's rollout records (every group's
// when group is ""), newest first by ID (IDs begin with their start
// time), of at most limit records (1 to MaxRolloutsPage), starting after
// the record after names ("group/env/id", from a previous page's next;
// "" = the newest). It reads only the page's records: the listing itself
// is one request per thousand records, so a page costs the same at any
// history size up to that. next is the cursor of the following page, ""
// after the last. A record that cannot be read or is invalid is in the
// page with its Err; only a failed listing fails the call.
func (s *Store) ListRollouts(ctx context.Context, group, after string, limit int) (page []ListedRollout, next string, err error) {
	refs, err := s.ListRolloutRefs(ctx, group)
	if err != nil {
		return nil, "", err
	}
	limit = max(1, min(limit, MaxRolloutsPage))
	i := 0
	if after != "" {
		i = slices.IndexFunc(refs, func(r RolloutRef) bool { return r.Cursor() == after }) + 1
		if i == 0 {
			return nil, "", fmt.Errorf("blobstore: rollouts after %q: %w", after, ErrNotFound)
		}
	}
	refs = refs[i:]
	if len(refs) > limit {
		next = refs[limit-1].Cursor()
		refs = refs[:limit]
	}
	page = make([]ListedRollout, len(refs))
	errs := make(chan struct{}, 8) // bounds the reads in flight
	var wg sync.WaitGroup
	for i, ref := range refs {
		wg.Add(1)
		errs <- struct{}{}
		go func() {
			defer func() { <-errs; wg.Done() }()
			r, v, err := s.ReadRollout(ctx, ref)
			page[i] = ListedRollout{RolloutRef: ref, Record: r, Version: v, Err: err}
		}()
	}
	wg.Wait()
	return slices.DeleteFunc(page, func(l ListedRollout) bool { return errors.Is(l.Err, ErrNotFound) }), next, nil
}

// Cursor is the ref as ListRollouts' after and next spell it.
func (r RolloutRef) Cursor() string { return r.Group + "/" + r.Env + "/" + r.ID }

// ListRolloutRefs lists the records of group (every group's when group is
// ""), newest first by ID, without reading any: one request per thousand.
// Keys that are not a record's (names that are not names, objects set
// aside) are skipped.
func (s *Store) ListRolloutRefs(ctx context.Context, group string) ([]RolloutRef, error) {
	prefix := RolloutsPrefix
	if group != "" {
		if err := manifest.CheckName("group", group); err != nil {
			return nil, fmt.Errorf("blobstore: %w", err)
		}
		prefix += group + "/"
	}
	var refs []RolloutRef
	err := s.each(ctx, &blob.ListOptions{Prefix: prefix}, func(o *blob.ListObject) error {
		rest, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, RolloutsPrefix), ".json")
		parts := strings.Split(rest, "/")
		if o.IsDir || !ok || len(parts) != 3 {
			return nil
		}
		ref := RolloutRef{Group: parts[0], Env: parts[1], ID: parts[2]}
		if _, err := ref.Key(); err != nil {
			return nil
		}
		refs = append(refs, ref)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(refs, func(a, b RolloutRef) int {
		if c := strings.Compare(b.ID, a.ID); c != 0 {
			return c
		}
		return strings.Compare(a.Cursor(), b.Cursor())
	})
	return refs, nil
}

// Current is one group env's CurrentRollout marker.
type Current struct {
	Group, Env string
	// ID is the rollout it names; "" in a listing (which reads no marker).
	ID      string
	Version Version // "" when there is no marker
	// Digest is the hex MD5 of the marker's content, as ListManifests
	// gives it, "" where the listing gives none.
	Digest   string
	Modified time.Time
}

// CurrentRolloutKey returns rollouts/_current/{group}/{env}.json.
func CurrentRolloutKey(group, env string) (string, error) {
	for _, n := range [][2]string{{"group", group}, {"env", env}} {
		if err := manifest.CheckName(n[0], n[1]); err != nil {
			return "", fmt.Errorf("blobstore: %w", err)
		}
	}
	return currentRolloutsPrefix + group + "/" + env + ".json", nil
}

// ReadCurrentRollout reads group env's marker: a Current with Version ""
// when there is none. A marker that does not parse is an error naming it,
// returned with its Version (a writer may replace it).
func (s *Store) ReadCurrentRollout(ctx context.Context, group, env string) (Current, error) {
	key, err := CurrentRolloutKey(group, env)
	if err != nil {
		return Current{}, err
	}
	c := Current{Group: group, Env: env}
	doc, err := s.d.read(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	c.Version, c.Modified = doc.version, doc.modified
	cur, err := manifest.ParseCurrentRollout(doc.data)
	if err != nil {
		return c, fmt.Errorf("blobstore: %s: %w", key, err)
	}
	c.ID = cur.ID
	return c, nil
}

// WriteCurrentRollout makes id group env's current rollout, only if the
// marker's Version is ifVersion ("" = there must be none): the one write
// that decides which of two simultaneous starts wins.
func (s *Store) WriteCurrentRollout(ctx context.Context, group, env, id string, ifVersion Version) (Version, error) {
	key, err := CurrentRolloutKey(group, env)
	if err != nil {
		return "", err
	}
	if err := manifest.CheckName("rollout", id); err != nil {
		return "", fmt.Errorf("blobstore: %w", err)
	}
	return s.Write(ctx, key, manifest.CurrentRollout{ID: id}.Marshal(), ifVersion)
}

// ListCurrentRollouts lists the markers of every group env, sorted, with
// their Versions and Digests but not their IDs: one request per thousand
// group envs, whatever the history holds.
func (s *Store) ListCurrentRollouts(ctx context.Context) ([]Current, error) {
	var out []Current
	err := s.each(ctx, &blob.ListOptions{Prefix: currentRolloutsPrefix}, func(o *blob.ListObject) error {
		rest, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, currentRolloutsPrefix), ".json")
		group, env, two := strings.Cut(rest, "/")
		if o.IsDir || !ok || !two {
			return nil
		}
		if _, err := CurrentRolloutKey(group, env); err != nil {
			return nil
		}
		v, digest, err := s.d.listed(ctx, o)
		if errors.Is(err, ErrNotFound) || err == nil && v == "" {
			return nil
		}
		if err != nil {
			return err
		}
		out = append(out, Current{Group: group, Env: env, Version: v, Digest: digest, Modified: o.ModTime})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Current) int { return strings.Compare(a.Group+"/"+a.Env, b.Group+"/"+b.Env) })
	return out, nil
}

// each calls fn for every object a listing with opts returns, in order,
// and stops at the first error, which it returns; a failed listing is
// classified as the other bucket errors are.
func (s *Store) each(ctx context.Context, opts *blob.ListOptions, fn func(*blob.ListObject) error) error {
	it := s.bucket.List(opts)
	for {
		o, err := s.d.next(ctx, it)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return classify("list", opts.Prefix, err)
		}
		if err := fn(o); err != nil {
			return err
		}
	}
}

// ReadStatus reads status/{server}.json; ErrNotFound when pulld has not
// reported yet.
func (s *Store) ReadStatus(ctx context.Context, server string) (*manifest.Status, error) {
	key, err := StatusKey(server)
	if err != nil {
		return nil, err
	}
	doc, err := s.d.read(ctx, key)
	if err != nil {
		return nil, err
	}
	st, err := manifest.ParseStatus(doc.data)
	if err == nil && st.Server != server {
		err = fmt.Errorf("%w: it names server %q", manifest.ErrInconsistentStatus, st.Server)
	}
	if err != nil {
		return nil, fmt.Errorf("blobstore: %s: %w", key, err)
	}
	if st.Time.IsZero() {
		st.Time = doc.modified.UTC() // pulld leaves the heartbeat to the object
	}
	return st, nil
}

// WriteStatus writes status/{st.Server}.json. Each server has one writer,
// its pulld, so the write is unconditional.
func (s *Store) WriteStatus(ctx context.Context, st *manifest.Status) error {
	key, err := StatusKey(st.Server)
	if err != nil {
		return err
	}
	return s.Put(ctx, key, st.Marshal())
}

// auditKey returns {prefix}{inverted time}.json: listing the folder
// returns the newest record first.
func auditKey(prefix string, t time.Time) string {
	inv := uint64(1<<63-1) - uint64(t.UnixNano())
	return fmt.Sprintf("%s%019d.json", prefix, inv)
}

// auditPrefix returns where t's audit records are: audit/{server}/ or
// audit/groups/{group}/. Records are listed one level deep, so a server
// named "groups" keeps its own.
func auditPrefix(t manifest.Target) (string, error) {
	if err := t.Check(); err != nil {
		return "", fmt.Errorf("blobstore: audit: %w", err)
	}
	if t.IsGroup() {
		return AuditPrefix + "groups/" + t.Name + "/", nil
	}
	return AuditPrefix + t.Name + "/", nil
}

// AppendAudit records one change: of a server's manifest under
// audit/{server}/, of a group's (r.Group) under audit/groups/{group}/, of
// the push config (r.Config) under config/audit/. Records are never
// overwritten: two records in the same nanosecond get distinct keys.
func (s *Store) AppendAudit(ctx context.Context, r *manifest.AuditRecord) error {
	prefix := configAuditPrefix
	if !r.Config {
		var err error
		if prefix, err = auditPrefix(r.Target()); err != nil {
			return err
		}
	}
	t := r.Time
	for range 10 {
		_, err := s.Write(ctx, auditKey(prefix, t), r.Marshal(), "")
		if !errors.Is(err, ErrConflict) {
			return err
		}
		t = t.Add(-time.Nanosecond)
	}
	return fmt.Errorf("blobstore: audit %s: no free key", prefix)
}

// ListAudit returns up to limit records for t's manifest, newest first.
func (s *Store) ListAudit(ctx context.Context, t manifest.Target, limit int) ([]*manifest.AuditRecord, error) {
	prefix, err := auditPrefix(t)
	if err != nil {
		return nil, err
	}
	return s.listAudit(ctx, prefix, limit)
}

// ListConfigAudit returns up to limit records of push config changes,
// newest first.
func (s *Store) ListConfigAudit(ctx context.Context, limit int) ([]*manifest.AuditRecord, error) {
	return s.listAudit(ctx, configAuditPrefix, limit)
}

func (s *Store) listAudit(ctx context.Context, prefix string, limit int) ([]*manifest.AuditRecord, error) {
	var out []*manifest.AuditRecord
	errEnough := errors.New("enough")
	err := s.each(ctx, &blob.ListOptions{Prefix: prefix, Delimiter: "/"}, func(o *blob.ListObject) error {
		if len(out) == limit {
			return errEnough
		}
		if o.IsDir {
			return nil
		}
		data, _, err := s.Read(ctx, o.Key)
		if err != nil {
			return err
		}
		r, err := manifest.ParseAuditRecord(data)
		if err != nil {
			return fmt.Errorf("blobstore: %s: %w", o.Key, err)
		}
		out = append(out, r)
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, err
	}
	return out, nil
}
