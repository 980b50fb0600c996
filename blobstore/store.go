// Package blobstore is pushpull's bucket: the key layout of docs/design.md
// over a gocloud.dev/blob bucket, with the few operations the three programs
// need and that every backend must do the same way:
//
//   - reads that return an opaque Version with the content;
//   - writes conditional on that Version, and writes-if-absent, that fail
//     with ErrConflict on every backend when the condition does not hold, so
//     two editors can never silently overwrite each other; the Version a
//     write returns is that write's own, never one read back afterwards;
//   - a Changed check for polling that transfers no body;
//   - streaming package writes and reads, never holding a package in memory.
//
// A Store is opened by URL: file:///abs/dir (the embedded default), mem://
// (tests), gs://bucket (GCS; STORAGE_EMULATOR_HOST is honoured) and
// s3://bucket?endpoint=…&use_path_style=true (S3 and S3-compatible servers).
// A prefix=team-a/ query parameter puts every key under that prefix, so
// several fleets can share a bucket. Open refuses a file:// directory that
// does not exist (a typo would otherwise be a new, empty bucket); Create
// makes it.
//
// Each backend decides once, in its own file, how an object is versioned
// and how a condition is enforced:
//
//   - GCS: the object's generation, conditions enforced by the server;
//   - S3: the ETag, conditions (If-Match, If-None-Match) enforced by the
//     server, which CheckConditionalWrites verifies it really does;
//   - file://: the MD5 of the file's content, whoever wrote it (cp, an
//     editor, rsync, config management: fileblob's sidecar is never
//     trusted), with conditional writes serialised by an flock on the bucket
//     directory so they hold between processes on one host;
//   - mem://: the content MD5, conditions serialised within the process.
//
// Every name that becomes part of a key is checked with manifest.CheckName
// before the key is built. A Store is safe for concurrent use.
package blobstore

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// URLs
	_ "gocloud.dev/blob/gcsblob"  // gs:// URLs
	_ "gocloud.dev/blob/memblob"  // mem:// URLs
	_ "gocloud.dev/blob/s3blob"   // s3:// URLs
	"gocloud.dev/gcerrors"
)

// ErrConflict is returned (wrapped) when a conditional write fails: the
// object changed since the Version the caller read, or a write-if-absent
// found the object already there.
var ErrConflict = errors.New("version conflict")

// ErrNotFound is returned (wrapped) when an object does not exist, and by
// Open when a file:// bucket's directory does not.
var ErrNotFound = errors.New("not found")

// ErrTooLarge is returned (wrapped) when a document (a manifest, a status,
// the push config, an audit record) is larger than MaxDocumentSize.
var ErrTooLarge = errors.New("document too large")

// MaxDocumentSize bounds every document the Store reads or writes: a
// manifest or status larger than this is refused whole, before its body is
// read.
const MaxDocumentSize = 1 << 20

// ErrUnconditionalStore is returned (wrapped) by CheckConditionalWrites when
// the store accepts writes whose condition does not hold: on such a store
// concurrent editors lose updates without an error.
var ErrUnconditionalStore = errors.New("the store does not honour conditional writes")

// Version identifies one version of an object. It is opaque: compare it
// only for equality. The empty Version means "does not exist".
type Version string

// Store is a pushpull bucket. It is safe for concurrent use; Close it when done.
type Store struct {
	bucket *blob.Bucket
	url    string
	dir    string // file://: the bucket's directory
	d      driver
}

// Open opens the bucket at urlstr. A file:// URL must name an existing
// directory; when it does not, the error wraps ErrNotFound and reads
// "bucket URL: directory DIR does not exist".
func Open(ctx context.Context, urlstr string) (*Store, error) {
	s, _, err := open(ctx, urlstr, false)
	return s, err
}

// Create is Open for the first writer of a bucket: it makes a missing
// file:// directory and reports whether it did.
func Create(ctx context.Context, urlstr string) (s *Store, created bool, err error) {
	return open(ctx, urlstr, true)
}

func open(ctx context.Context, urlstr string, create bool) (*Store, bool, error) {
	u, err := url.Parse(urlstr)
	if err != nil {
		return nil, false, fmt.Errorf("blobstore: bucket URL %q: %w", urlstr, err)
	}
	prefix := u.Query().Get("prefix")
	created := false
	if u.Scheme == "file" {
		if u.Host != "" && u.Host != "localhost" {
			return nil, false, fmt.Errorf("blobstore: bucket URL %q: file URLs take an absolute path (file:///dir)", urlstr)
		}
		created, err = checkDir(u.Path, create)
		switch {
		case errors.Is(err, ErrNotFound):
			return nil, false, &missingDirError{url: urlstr, dir: u.Path}
		case err != nil:
			return nil, false, fmt.Errorf("blobstore: bucket %s: %w", urlstr, err)
		}
		q := u.Query()
		if q.Get("no_tmp_dir") == "" {
			q.Set("no_tmp_dir", "true") // temporary files beside their object: renames stay on one file system
		}
		u.RawQuery = q.Encode()
	}
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		return nil, false, fmt.Errorf("blobstore: open %s: %w", urlstr, err)
	}
	s := &Store{bucket: b, url: urlstr}
	p := portable{b}
	switch u.Scheme {
	case "file":
		s.dir = u.Path
		s.d = newFileDriver(p, u.Path, prefix)
	case "mem":
		s.d = &memDriver{portable: p}
	case "gs":
		s.d, err = newGCSDriver(p, u.Host, prefix)
	case "s3":
		s.d, err = newS3Driver(p, u.Host, prefix)
	default:
		err = fmt.Errorf("scheme %q is not supported (file, mem, gs, s3)", u.Scheme)
	}
	if err != nil {
		b.Close()
		return nil, false, fmt.Errorf("blobstore: open %s: %w", urlstr, err)
	}
	return s, created, nil
}

// checkDir checks that a file:// bucket's directory exists, making it when
// create is set, and reports whether it made it. A missing directory is
// ErrNotFound when create is not set.
func checkDir(dir string, create bool) (bool, error) {
	fi, err := os.Stat(dir)
	switch {
	case err == nil && fi.IsDir():
		return false, nil
	case err == nil:
		return false, fmt.Errorf("%s is not a directory", dir)
	case !errors.Is(err, fs.ErrNotExist):
		return false, err
	case !create:
		return false, ErrNotFound
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	return true, nil
}

// missingDirError is Open's error for a file:// bucket whose directory
// does not exist: one line naming the bucket and the directory, to which a
// program may add how to make one (release -create). It wraps
// ErrNotFound without repeating its text.
type missingDirError struct{ url, dir string }

func (e *missingDirError) Error() string {
	return fmt.Sprintf("bucket %s: directory %s does not exist", e.url, e.dir)
}

func (e *missingDirError) Unwrap() error { return ErrNotFound }

// Close releases the bucket.
func (s *Store) Close() error { return s.bucket.Close() }

// URL returns the URL the Store was opened with.
func (s *Store) URL() string { return s.url }

// Bucket returns the underlying bucket, for what this package does not cover.
func (s *Store) Bucket() *blob.Bucket { return s.bucket }

// LocalDir returns the directory of a file:// bucket (without any prefix),
// and "" for other backends. pulld watches it for changes.
func (s *Store) LocalDir() string { return s.dir }

// CheckConditionalWrites verifies, with a few writes to a probe object
// under uploads/ that it then deletes, that the store refuses a
// write-if-absent of an existing object and a write with a stale Version.
// The error wraps ErrUnconditionalStore when it does not. Only S3 needs the
// check (S3-compatible servers exist that ignore If-Match); on the other
// backends it returns nil at once. Programs that edit desired state call it
// once when they start.
func (s *Store) CheckConditionalWrites(ctx context.Context) error {
	return s.d.checkConditional(ctx)
}

// classify maps a bucket error to the package's sentinels, keeping the cause.
func classify(op, key string, err error) error {
	if err == nil {
		return nil
	}
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		return fmt.Errorf("blobstore: %s %s: %w", op, key, ErrNotFound)
	case gcerrors.FailedPrecondition:
		return fmt.Errorf("blobstore: %s %s: %w", op, key, ErrConflict)
	}
	return fmt.Errorf("blobstore: %s %s: %w", op, key, err)
}

func conflict(key string) error { return fmt.Errorf("blobstore: write %s: %w", key, ErrConflict) }

// Read returns the content of key and its Version. An object larger than
// MaxDocumentSize is refused (ErrTooLarge) without reading its body.
func (s *Store) Read(ctx context.Context, key string) ([]byte, Version, error) {
	doc, err := s.d.read(ctx, key)
	return doc.data, doc.version, err
}

// Changed reports whether key's Version differs from since, and returns the
// current one ("" when the object does not exist). It never transfers the
// object's body: one small request per call (on file://, one stat; the
// file is read only when the stat shows it changed).
func (s *Store) Changed(ctx context.Context, key string, since Version) (bool, Version, error) {
	v, err := s.d.stat(ctx, key)
	if err != nil {
		return false, "", err
	}
	return v != since, v, nil
}

// Write stores data at key only if the object's current Version is
// ifVersion; ifVersion "" means the object must not exist. When the
// condition fails, nothing is written and the error wraps ErrConflict.
// It returns the Version of this write. data larger than MaxDocumentSize
// is refused (ErrTooLarge).
func (s *Store) Write(ctx context.Context, key string, data []byte, ifVersion Version) (Version, error) {
	if err := checkSize(key, int64(len(data))); err != nil {
		return "", err
	}
	return s.d.write(ctx, key, data, ifVersion)
}

// Put stores data at key unconditionally. It is for documents with a single
// writer, such as status records. data larger than MaxDocumentSize is
// refused (ErrTooLarge).
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	if err := checkSize(key, int64(len(data))); err != nil {
		return err
	}
	return s.d.put(ctx, key, data)
}

// checkSize refuses a document of n bytes larger than MaxDocumentSize.
func checkSize(key string, n int64) error {
	if n > MaxDocumentSize {
		return fmt.Errorf("blobstore: %s: %w: %d bytes, more than %d", key, ErrTooLarge, n, MaxDocumentSize)
	}
	return nil
}

// contentVersion is the Version of data on backends that version by
// content.
func contentVersion(data []byte) Version {
	sum := md5.Sum(data)
	return Version(hex.EncodeToString(sum[:]))
}

func contentType(key string) string {
	if strings.HasSuffix(key, ".json") {
		return "application/json"
	}
	return "application/octet-stream"
}
