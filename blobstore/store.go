// Package blobstore is pushpull's bucket: the key layout of DESIGN.md
// section 1 over a gocloud.dev/blob bucket, with the few operations the
// three programs need and that every backend must do the same way:
//
//   - reads that return an opaque Version with the content (the GCS
//     generation, the S3 ETag, the content MD5 for file:// and mem://);
//   - writes conditional on that Version, and writes-if-absent, that fail
//     with ErrConflict on every backend when the condition does not hold, so
//     two editors can never silently overwrite each other;
//   - a Changed check for polling that transfers no body;
//   - streaming package writes and reads, never holding a package in memory.
//
// A Store is opened by URL: file:///abs/dir (the embedded default; the
// directory is created when missing), mem:// (tests), gs://bucket (GCS;
// STORAGE_EMULATOR_HOST is honoured) and s3://bucket?endpoint=…&use_path_style=true
// (S3 and S3-compatible servers). A prefix=team-a/ query parameter puts every
// key under that prefix, so several fleets can share a bucket.
//
// On file:// buckets, conditional writes are serialised by an flock on the
// bucket directory, so they hold between processes on one host; mem://
// buckets serialise them within the process. GCS and S3 enforce the
// conditions server-side.
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
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"cloud.google.com/go/storage"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
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

// ErrNotFound is returned (wrapped) when an object does not exist.
var ErrNotFound = errors.New("not found")

// Version identifies one version of an object. It is opaque: compare it
// only for equality. The empty Version means "does not exist".
type Version string

type backend int

const (
	backendOther backend = iota
	backendFile
	backendMem
	backendGCS
	backendS3
)

// Store is a pushpull bucket. It is safe for concurrent use; Close it when done.
type Store struct {
	bucket  *blob.Bucket
	url     string
	backend backend
	dir     string     // file://: the bucket's directory
	prefix  string     // the URL's prefix= parameter, which keys are under
	mu      sync.Mutex // serialises conditional writes on file:// and mem:// within the process
}

// Open opens the bucket at urlstr. For file:// URLs the directory is made
// when missing and temporary files are written inside it, so renames stay on
// one file system.
func Open(ctx context.Context, urlstr string) (*Store, error) {
	u, err := url.Parse(urlstr)
	if err != nil {
		return nil, fmt.Errorf("blobstore: bucket URL %q: %w", urlstr, err)
	}
	s := &Store{url: urlstr}
	switch u.Scheme {
	case "file":
		s.backend = backendFile
		s.dir = u.Path
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("blobstore: bucket URL %q: file URLs take an absolute path (file:///dir)", urlstr)
		}
		q := u.Query()
		s.prefix = q.Get("prefix")
		if q.Get("create_dir") == "" {
			q.Set("create_dir", "true")
		}
		if q.Get("no_tmp_dir") == "" {
			q.Set("no_tmp_dir", "true")
		}
		u.RawQuery = q.Encode()
	case "mem":
		s.backend = backendMem
	case "gs":
		s.backend = backendGCS
	case "s3":
		s.backend = backendS3
	}
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("blobstore: open %s: %w", urlstr, err)
	}
	s.bucket = b
	return s, nil
}

// Close releases the bucket.
func (s *Store) Close() error { return s.bucket.Close() }

// URL returns the URL the Store was opened with.
func (s *Store) URL() string { return s.url }

// Bucket returns the underlying bucket, for what this package does not cover.
func (s *Store) Bucket() *blob.Bucket { return s.bucket }

// LocalDir returns the directory of a file:// bucket (without any prefix),
// and "" for other backends. pulld watches it for changes.
func (s *Store) LocalDir() string { return s.dir }

// lock serialises writes on backends that cannot enforce conditions
// themselves, and returns the unlock function. On file:// it also takes an
// flock on the bucket directory, shared for readers and exclusive for
// writers: fileblob writes an object's attributes sidecar in place, so
// without it a reader in another process can see a half-written sidecar.
func (s *Store) lock(exclusive bool) (func(), error) {
	switch s.backend {
	case backendFile:
		how := syscall.LOCK_SH
		if exclusive {
			how = syscall.LOCK_EX
			s.mu.Lock()
		}
		f, err := os.Open(s.dir)
		if err == nil {
			err = syscall.Flock(int(f.Fd()), how)
		}
		if err != nil {
			if f != nil {
				f.Close()
			}
			if exclusive {
				s.mu.Unlock()
			}
			return nil, fmt.Errorf("lock bucket directory: %w", err)
		}
		return func() {
			f.Close() // releases the flock
			if exclusive {
				s.mu.Unlock()
			}
		}, nil
	case backendMem:
		if exclusive {
			s.mu.Lock()
			return s.mu.Unlock, nil
		}
	}
	return func() {}, nil
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

// Read returns the content of key and its Version.
func (s *Store) Read(ctx context.Context, key string) ([]byte, Version, error) {
	unlock, err := s.lock(false)
	if err != nil {
		return nil, "", fmt.Errorf("blobstore: read %s: %w", key, err)
	}
	defer unlock()
	r, err := s.bucket.NewReader(ctx, key, nil)
	if err != nil {
		return nil, "", classify("read", key, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, "", classify("read", key, err)
	}
	var v Version
	switch s.backend {
	case backendGCS:
		var sr *storage.Reader
		if r.As(&sr) {
			v = generation(sr.Attrs.Generation)
		}
	case backendS3:
		var out s3.GetObjectOutput
		if r.As(&out) && out.ETag != nil {
			v = Version(*out.ETag)
		}
	default:
		sum := md5.Sum(data)
		v = Version(hex.EncodeToString(sum[:]))
	}
	if v == "" {
		return nil, "", fmt.Errorf("blobstore: read %s: backend gave no version", key)
	}
	return data, v, nil
}

func generation(g int64) Version { return Version("g" + strconv.FormatInt(g, 10)) }

// version returns the current Version of key without reading its body:
// "" when it does not exist.
func (s *Store) version(ctx context.Context, key string) (Version, error) {
	a, err := s.bucket.Attributes(ctx, key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return "", nil
	}
	if err != nil {
		return "", classify("stat", key, err)
	}
	switch s.backend {
	case backendGCS:
		var oa storage.ObjectAttrs
		if a.As(&oa) {
			return generation(oa.Generation), nil
		}
	case backendS3:
		if a.ETag != "" {
			return Version(a.ETag), nil
		}
	default:
		if len(a.MD5) > 0 {
			return Version(hex.EncodeToString(a.MD5)), nil
		}
	}
	return "", fmt.Errorf("blobstore: stat %s: backend gave no version", key)
}

// exists reports whether key exists.
func (s *Store) exists(ctx context.Context, key string) (bool, error) {
	ok, err := s.bucket.Exists(ctx, key)
	return ok, classify("stat", key, err)
}

// Changed reports whether key's Version differs from since, and returns the
// current one ("" when the object does not exist). It reads only the
// object's attributes, never its body: one small request per call.
func (s *Store) Changed(ctx context.Context, key string, since Version) (bool, Version, error) {
	unlock, err := s.lock(false)
	if err != nil {
		return false, "", fmt.Errorf("blobstore: stat %s: %w", key, err)
	}
	defer unlock()
	v, err := s.version(ctx, key)
	if err != nil {
		return false, "", err
	}
	return v != since, v, nil
}

// Write stores data at key only if the object's current Version is
// ifVersion; ifVersion "" means the object must not exist. When the
// condition fails, nothing is written and the error wraps ErrConflict.
// It returns the new Version.
func (s *Store) Write(ctx context.Context, key string, data []byte, ifVersion Version) (Version, error) {
	unlock, err := s.lock(true)
	if err != nil {
		return "", fmt.Errorf("blobstore: write %s: %w", key, err)
	}
	defer unlock()
	opts := &blob.WriterOptions{ContentType: contentType(key)}
	switch {
	case ifVersion == "":
		opts.IfNotExist = true
	case s.backend == backendGCS:
		g, err := strconv.ParseInt(strings.TrimPrefix(string(ifVersion), "g"), 10, 64)
		if err != nil || !strings.HasPrefix(string(ifVersion), "g") {
			return "", fmt.Errorf("blobstore: write %s: %q is not a GCS version", key, ifVersion)
		}
		opts.BeforeWrite = func(as func(any) bool) error {
			var h **storage.ObjectHandle
			if !as(&h) {
				return errors.New("gcs: no object handle")
			}
			*h = (*h).If(storage.Conditions{GenerationMatch: g})
			return nil
		}
	case s.backend == backendS3:
		opts.BeforeWrite = func(as func(any) bool) error {
			var in *transfermanager.UploadObjectInput
			if !as(&in) {
				return errors.New("s3: no upload input")
			}
			etag := string(ifVersion)
			in.IfMatch = &etag
			return nil
		}
	case s.backend == backendFile || s.backend == backendMem:
		cur, err := s.version(ctx, key)
		if err != nil {
			return "", err
		}
		if cur != ifVersion {
			return "", fmt.Errorf("blobstore: write %s: %w", key, ErrConflict)
		}
	default:
		return "", fmt.Errorf("blobstore: write %s: conditional writes are not supported on %s", key, s.url)
	}
	if opts.IfNotExist && (s.backend == backendFile || s.backend == backendMem) {
		// fileblob checks existence at Close within one process only; the
		// flock makes the check hold across processes.
		if cur, err := s.version(ctx, key); err != nil {
			return "", err
		} else if cur != "" {
			return "", fmt.Errorf("blobstore: write %s: %w", key, ErrConflict)
		}
	}
	if err := s.bucket.WriteAll(ctx, key, data, opts); err != nil {
		// The condition failed: S3 races answer 409, and a version-matching
		// write of a missing object is refused with 404 rather than 412.
		if isS3Conflict(err) || (ifVersion != "" && gcerrors.Code(err) == gcerrors.NotFound) {
			return "", fmt.Errorf("blobstore: write %s: %w", key, ErrConflict)
		}
		return "", classify("write", key, err)
	}
	return s.writtenVersion(ctx, key, data)
}

// writtenVersion returns the Version of what was just written.
func (s *Store) writtenVersion(ctx context.Context, key string, data []byte) (Version, error) {
	switch s.backend {
	case backendGCS, backendS3:
		// Another writer may already have replaced it; the version read here
		// is then theirs, and a later conditional write will conflict, which
		// is the safe direction.
		return s.version(ctx, key)
	}
	sum := md5.Sum(data)
	return Version(hex.EncodeToString(sum[:])), nil
}

// Put stores data at key unconditionally. It is for documents with a single
// writer, such as status and audit records.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	unlock, err := s.lock(true)
	if err != nil {
		return fmt.Errorf("blobstore: write %s: %w", key, err)
	}
	defer unlock()
	err = s.bucket.WriteAll(ctx, key, data, &blob.WriterOptions{ContentType: contentType(key)})
	return classify("write", key, err)
}

func contentType(key string) string {
	if strings.HasSuffix(key, ".json") {
		return "application/json"
	}
	return "application/octet-stream"
}

// isS3Conflict reports S3's answer to two conditional writes racing on one
// key (409 ConditionalRequestConflict), which gocloud does not classify.
func isS3Conflict(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ConditionalRequestConflict"
}
