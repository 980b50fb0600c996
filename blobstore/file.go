package blobstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/google/renameio/v2"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// fileDriver is the file:// backend, the embedded default. A file:// bucket
// is a directory that people also write into with cp, editors, rsync and
// config management, none of which keep fileblob's ".attrs" sidecar (with
// its MD5) up to date. So an object's Version comes from the file alone:
// the MD5 of its content. Changed must not read the body on every poll, so
// stat remembers, per key, the file's stat stamp (device, inode, size,
// modification and change times) with the Version it hashed; while the
// stamp is unchanged the file is not read again.
//
// Conditional writes hold an exclusive flock on the bucket directory (and
// a mutex within the process), readers a shared one: fileblob writes an
// object's sidecar in place, so without it a reader in another process can
// see a half-written sidecar. Under the exclusive lock the current Version
// is computed from the content itself, never from the stamp cache.
//
// Packages take their own path (stage and seal): fileblob can neither
// replace an object's metadata nor skip the MD5 it computes of everything
// it writes, so sealing through the portable API would hash the package a
// third time and copy it whole. Instead, a package is staged as a plain
// file in the bucket directory and sealed by hard-linking it under its key
// (the link fails if the key exists) and writing the attributes sidecar
// that fileblob reads, in fileblob's format, under the exclusive lock. The
// data file is not fsynced, as fileblob does not fsync either; the sidecar
// is written with renameio.
type fileDriver struct {
	portable
	dir    string     // the bucket's directory
	prefix string     // the URL's prefix= parameter, which keys are under
	mu     sync.Mutex // serialises writers within the process (the flock does between processes)

	stampMu sync.Mutex
	stamps  map[string]fileStamp // by key
}

// fileStamp is what a stat of a file said when its content was hashed.
type fileStamp struct {
	stamp   string
	version Version
}

func newFileDriver(p portable, dir, prefix string) *fileDriver {
	return &fileDriver{portable: p, dir: dir, prefix: prefix, stamps: map[string]fileStamp{}}
}

// lock takes the bucket directory's flock, shared or exclusive, and returns
// the unlock function.
func (d *fileDriver) lock(exclusive bool) (func(), error) {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
		d.mu.Lock()
	}
	f, err := os.Open(d.dir)
	if err == nil {
		err = syscall.Flock(int(f.Fd()), how)
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		if exclusive {
			d.mu.Unlock()
		}
		return nil, fmt.Errorf("lock bucket directory: %w", err)
	}
	return func() {
		f.Close() // releases the flock
		if exclusive {
			d.mu.Unlock()
		}
	}, nil
}

func (d *fileDriver) read(ctx context.Context, key string) (document, error) {
	unlock, err := d.lock(false)
	if err != nil {
		return document{}, fmt.Errorf("blobstore: read %s: %w", key, err)
	}
	defer unlock()
	r, data, err := d.readAll(ctx, key)
	if err != nil {
		return document{}, err
	}
	return document{data, contentVersion(data), r.ModTime()}, nil
}

// listed is stat's: the content's MD5, hashed again only when the file's
// stat stamp changed (a listing's MD5 comes from fileblob's sidecar, which
// hand edits leave stale). It is both the Version and the digest.
func (d *fileDriver) listed(ctx context.Context, o *blob.ListObject) (Version, string, error) {
	v, err := d.stat(ctx, o.Key)
	return v, string(v), err
}

// next retries a page whose listing failed as not found: fileblob walks
// the directory and fails the page when a file vanishes between the
// directory read and its stat (another writer's temporary file, an
// editor's swap file). Another listing of the page no longer sees it.
func (d *fileDriver) next(ctx context.Context, it *blob.ListIterator) (*blob.ListObject, error) {
	for try := 1; ; try++ {
		o, err := it.Next(ctx)
		if gcerrors.Code(err) != gcerrors.NotFound || try == 10 {
			return o, err
		}
	}
}

func (d *fileDriver) stat(ctx context.Context, key string) (Version, error) {
	unlock, err := d.lock(false)
	if err != nil {
		return "", fmt.Errorf("blobstore: stat %s: %w", key, err)
	}
	defer unlock()
	a, err := d.attrs(ctx, key)
	if err != nil || a == nil {
		return "", err
	}
	stamp, ok := statStamp(a)
	if ok && a.Size > MaxDocumentSize {
		// Too large to be a document: versioned by its stamp, never read.
		return Version("large:" + stamp), nil
	}
	if ok {
		d.stampMu.Lock()
		s, known := d.stamps[key]
		d.stampMu.Unlock()
		if known && s.stamp == stamp {
			return s.version, nil
		}
	}
	// Stamped before the read: a write in between gives a newer content
	// under the older stamp, and the next stat, seeing a new stamp, hashes
	// again. A change is never hidden.
	_, data, err := d.readAll(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	v := contentVersion(data)
	if ok {
		d.stampMu.Lock()
		d.stamps[key] = fileStamp{stamp: stamp, version: v}
		d.stampMu.Unlock()
	}
	return v, nil
}

// statStamp returns the stat stamp of the file behind a: it changes on
// every write of the file, in place or by rename.
func statStamp(a *blob.Attributes) (string, bool) {
	var fi os.FileInfo
	if !a.As(&fi) {
		return "", false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", false
	}
	return strings.Join([]string{
		strconv.FormatUint(uint64(st.Dev), 10), strconv.FormatUint(st.Ino, 10), strconv.FormatInt(st.Size, 10),
		strconv.FormatInt(st.Mtim.Nano(), 10), strconv.FormatInt(st.Ctim.Nano(), 10),
	}, ":"), true
}

func (d *fileDriver) write(ctx context.Context, key string, data []byte, ifVersion Version) (Version, error) {
	unlock, err := d.lock(true)
	if err != nil {
		return "", fmt.Errorf("blobstore: write %s: %w", key, err)
	}
	defer unlock()
	var cur Version
	_, old, err := d.readAll(ctx, key)
	switch {
	case err == nil:
		cur = contentVersion(old)
	case !errors.Is(err, ErrNotFound):
		return "", err
	}
	if cur != ifVersion {
		return "", conflict(key)
	}
	if err := d.portable.put(ctx, key, data); err != nil {
		return "", err
	}
	return contentVersion(data), nil
}

func (d *fileDriver) put(ctx context.Context, key string, data []byte) error {
	unlock, err := d.lock(true)
	if err != nil {
		return fmt.Errorf("blobstore: write %s: %w", key, err)
	}
	defer unlock()
	return d.portable.put(ctx, key, data)
}

func (d *fileDriver) delete(ctx context.Context, key string) error {
	unlock, err := d.lock(true)
	if err != nil {
		return fmt.Errorf("blobstore: delete %s: %w", key, err)
	}
	defer unlock()
	return d.portable.delete(ctx, key)
}

func (d *fileDriver) attributes(ctx context.Context, key string) (*blob.Attributes, error) {
	unlock, err := d.lock(false)
	if err != nil {
		return nil, fmt.Errorf("blobstore: stat %s: %w", key, err)
	}
	defer unlock()
	return d.portable.attributes(ctx, key)
}

func (d *fileDriver) stage(ctx context.Context, key string) (io.WriteCloser, error) {
	path, ok := d.localPath(key)
	if !ok {
		return d.portable.stage(ctx, key)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o777); err != nil {
		return nil, fmt.Errorf("blobstore: upload %s: %w", key, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return nil, fmt.Errorf("blobstore: upload %s: %w", key, err)
	}
	return f, nil
}

func (d *fileDriver) seal(ctx context.Context, staging, key string, md map[string]string) error {
	unlock, err := d.lock(true)
	if err != nil {
		return fmt.Errorf("blobstore: seal %s: %w", key, err)
	}
	defer unlock()
	src, ok1 := d.localPath(staging)
	dst, ok2 := d.localPath(key)
	if !ok1 || !ok2 {
		return d.copyWithMetadata(ctx, staging, key, md)
	}
	return classify("seal", key, sealLocal(src, dst, md))
}

func (d *fileDriver) checkConditional(context.Context) error { return nil }

// attrsSuffix is the suffix of fileblob's attributes sidecar.
const attrsSuffix = ".attrs"

// fileAttrs is the sidecar fileblob keeps beside each object (its xattrs
// type). Objects sealed here carry no MD5: fileblob records one only for
// what it wrote itself, and packages are identified by their sha256.
type fileAttrs struct {
	CacheControl       string            `json:"user.cache_control"`
	ContentDisposition string            `json:"user.content_disposition"`
	ContentEncoding    string            `json:"user.content_encoding"`
	ContentLanguage    string            `json:"user.content_language"`
	ContentType        string            `json:"user.content_type"`
	Metadata           map[string]string `json:"user.metadata"`
}

// localPath returns the file that holds key, and false when fileblob would
// escape the key's file name (the package path then falls back to the
// portable API). The keys this package builds never need escaping; only an
// unusual prefix does.
func (d *fileDriver) localPath(key string) (string, bool) {
	k := d.prefix + key
	if k == "" || strings.HasPrefix(k, "/") || strings.HasSuffix(k, "/") ||
		strings.HasSuffix(k, attrsSuffix) || strings.Contains(k, "//") || strings.Contains(k, "..") {
		return "", false
	}
	for _, seg := range strings.Split(k, "/") {
		if seg == "." {
			return "", false
		}
	}
	for _, c := range k {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-/+=@", c)
		if !ok {
			return "", false
		}
	}
	return filepath.Join(d.dir, filepath.FromSlash(k)), true
}

// sealLocal makes the staged file src visible as the object at dst with
// metadata md. It links the data first, so that the object's existence is
// decided by one exclusive create, then writes the sidecar; readers that
// take the bucket's shared lock never see the object without it. The
// caller holds the exclusive lock.
func sealLocal(src, dst string, md map[string]string) error {
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("%s exists: %w", filepath.Base(dst), ErrConflict)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	attrs, err := json.Marshal(fileAttrs{ContentType: "application/octet-stream", Metadata: md})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o777); err != nil {
		return err
	}
	if err := os.Link(src, dst); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists: %w", filepath.Base(dst), ErrConflict)
		}
		return err
	}
	if err := renameio.WriteFile(dst+attrsSuffix, attrs, 0o666); err != nil {
		_ = os.Remove(dst)
		return err
	}
	return nil
}
