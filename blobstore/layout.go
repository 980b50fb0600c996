package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"gocloud.dev/blob"

	"github.com/pushpull/pushpull/manifest"
)

// The top-level folders of the bucket (DESIGN.md section 1).
const (
	PackagesPrefix = "packages/"
	ServersPrefix  = "servers/"
	StatusPrefix   = "status/"
	AuditPrefix    = "audit/"
	uploadsPrefix  = "uploads/" // packages being streamed in, before they are sealed
)

// ManifestKey returns servers/{server}.json, after checking the name.
func ManifestKey(server string) (string, error) {
	if err := manifest.CheckName("server", server); err != nil {
		return "", fmt.Errorf("blobstore: %w", err)
	}
	return ServersPrefix + server + ".json", nil
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

// ReadManifest reads and validates servers/{server}.json. A missing manifest
// is an empty one with Version "". An invalid one is an error wrapping
// manifest.ErrInvalidManifest, returned with its Version so callers can
// report which version they refused.
func (s *Store) ReadManifest(ctx context.Context, server string) (*manifest.Manifest, Version, error) {
	key, err := ManifestKey(server)
	if err != nil {
		return nil, "", err
	}
	data, v, err := s.Read(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return &manifest.Manifest{}, "", nil
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

// ChangedManifest is Changed for servers/{server}.json.
func (s *Store) ChangedManifest(ctx context.Context, server string, since Version) (bool, Version, error) {
	key, err := ManifestKey(server)
	if err != nil {
		return false, "", err
	}
	return s.Changed(ctx, key, since)
}

// WriteManifest validates m, increments m.Revision and writes it in
// canonical form, only if the manifest's current Version is ifVersion (""
// for a manifest that must not exist yet). On ErrConflict m.Revision is
// left incremented; re-read before retrying.
func (s *Store) WriteManifest(ctx context.Context, server string, m *manifest.Manifest, ifVersion Version) (Version, error) {
	key, err := ManifestKey(server)
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

// UpdateManifest applies fn to the current manifest of server and writes the
// result conditionally, re-reading and re-applying fn when another writer
// got there first. fn must be safe to call more than once; if it returns an
// error nothing is written. When fn leaves the manifest unchanged nothing is
// written either. It returns the manifest before and after the change and the
// Version written. A manifest that does not parse is never overwritten.
func (s *Store) UpdateManifest(ctx context.Context, server string, fn func(*manifest.Manifest) error) (before, after *manifest.Manifest, v Version, err error) {
	for try := 0; try < maxUpdateTries; try++ {
		cur, ver, err := s.ReadManifest(ctx, server)
		if err != nil {
			return nil, nil, "", err
		}
		next := cur.Clone()
		if err := fn(next); err != nil {
			return nil, nil, "", err
		}
		if string(next.Marshal()) == string(cur.Marshal()) {
			return cur, cur, ver, nil
		}
		nv, err := s.WriteManifest(ctx, server, next, ver)
		if errors.Is(err, ErrConflict) {
			time.Sleep(time.Duration(try*try) * time.Millisecond)
			continue
		}
		if err != nil {
			return nil, nil, "", err
		}
		return cur, next, nv, nil
	}
	return nil, nil, "", fmt.Errorf("blobstore: update manifest of %s: gave up after %d conflicting writers: %w", server, maxUpdateTries, ErrConflict)
}

// ListServers returns the servers that have a manifest, sorted.
func (s *Store) ListServers(ctx context.Context) ([]string, error) {
	var names []string
	it := s.bucket.List(&blob.ListOptions{Prefix: ServersPrefix, Delimiter: "/"})
	for {
		o, err := it.Next(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, classify("list", ServersPrefix, err)
		}
		name, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, ServersPrefix), ".json")
		if ok && !o.IsDir && manifest.CheckName("server", name) == nil {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// ReadStatus reads status/{server}.json; ErrNotFound when pulld has not
// reported yet.
func (s *Store) ReadStatus(ctx context.Context, server string) (*manifest.Status, error) {
	key, err := StatusKey(server)
	if err != nil {
		return nil, err
	}
	data, _, err := s.Read(ctx, key)
	if err != nil {
		return nil, err
	}
	st, err := manifest.ParseStatus(data)
	if err != nil {
		return nil, fmt.Errorf("blobstore: %s: %w", key, err)
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

// auditKey returns audit/{server}/{inverted time}-{nanos}.json: listing the
// folder returns the newest record first.
func auditKey(server string, t time.Time) string {
	inv := uint64(1<<63-1) - uint64(t.UnixNano())
	return fmt.Sprintf("%s%s/%019d.json", AuditPrefix, server, inv)
}

// AppendAudit records one change. Records are never overwritten: two
// records in the same nanosecond get distinct keys.
func (s *Store) AppendAudit(ctx context.Context, r *manifest.AuditRecord) error {
	if err := manifest.CheckName("server", r.Server); err != nil {
		return fmt.Errorf("blobstore: audit: %w", err)
	}
	t := r.Time
	for range 10 {
		_, err := s.Write(ctx, auditKey(r.Server, t), r.Marshal(), "")
		if !errors.Is(err, ErrConflict) {
			return err
		}
		t = t.Add(-time.Nanosecond)
	}
	return fmt.Errorf("blobstore: audit %s: no free key", r.Server)
}

// ListAudit returns up to limit records for server, newest first.
func (s *Store) ListAudit(ctx context.Context, server string, limit int) ([]*manifest.AuditRecord, error) {
	if err := manifest.CheckName("server", server); err != nil {
		return nil, fmt.Errorf("blobstore: audit: %w", err)
	}
	prefix := AuditPrefix + server + "/"
	var out []*manifest.AuditRecord
	it := s.bucket.List(&blob.ListOptions{Prefix: prefix})
	for len(out) < limit {
		o, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, classify("list", prefix, err)
		}
		data, _, err := s.Read(ctx, o.Key)
		if err != nil {
			return nil, err
		}
		r, err := manifest.ParseAuditRecord(data)
		if err != nil {
			return nil, fmt.Errorf("blobstore: %s: %w", o.Key, err)
		}
		out = append(out, r)
	}
	return out, nil
}
