package pkginstall

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/signing"
	"github.com/pushpull/pushpull/internal/unpack"
	"github.com/pushpull/pushpull/manifest"
)

// freeSpace returns the bytes available to unprivileged users on the file
// system holding dir. Tests replace it.
var freeSpace = func(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// bucketError marks an error of the bucket itself (as opposed to the
// package's content), the only kind a download retries.
type bucketError struct{ err error }

func (b bucketError) Error() string { return b.err.Error() }
func (b bucketError) Unwrap() error { return b.err }

// transient reports whether a download error is worth another try.
func transient(err error) bool {
	var be bucketError
	return errors.As(err, &be) && blobstore.IsTransient(be.err)
}

// bucketReader tags the errors of the object's body as bucket errors.
type bucketReader struct{ r io.Reader }

func (b bucketReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = bucketError{err}
	}
	return n, err
}

// counter counts bytes.
type counter struct{ n *int64 }

func (c counter) Write(p []byte) (int, error) { *c.n += int64(len(p)); return len(p), nil }

// unpacked is a package downloaded, verified and unpacked into a temporary
// directory under the env's builds/, not yet staged: its directories are
// still owner-writable (mode 0700) so that templates can be rendered in
// any of them, and modes holds the modes the archive gives them, which
// stage sets after rendering.
type unpacked struct {
	dir   string
	modes *unpack.DirModes
}

// download streams pkg from the bucket into a new temporary directory under
// the env's builds/, verifying it, and returns what it unpacked and the
// build's record. Transient bucket errors are retried with backoff; on any
// error the temporary directory is gone.
func (a *attempt) download(ctx context.Context, pkg manifest.PackageName) (*unpacked, buildRecord, error) {
	e := a.e
	if e.cfg.Store == nil {
		return nil, buildRecord{}, fmt.Errorf("pkginstall: download %s: no bucket configured", pkg)
	}
	if err := os.MkdirAll(e.buildsDir(a.env), 0o755); err != nil {
		return nil, buildRecord{}, fmt.Errorf("pkginstall: download %s: %w", pkg, err)
	}
	var err error
	for try := 1; ; try++ {
		var u *unpacked
		var rec buildRecord
		u, rec, err = a.fetch(ctx, pkg)
		if err == nil {
			return u, rec, nil
		}
		if !transient(err) || try >= e.cfg.DownloadTries || ctx.Err() != nil {
			break
		}
		wait := e.cfg.Backoff << (try - 1)
		a.log.Warn("download failed; trying again", "try", try, "wait", wait, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return nil, buildRecord{}, fmt.Errorf("pkginstall: download %s: %w", pkg, err)
}

// fetch is one try of download.
func (a *attempt) fetch(ctx context.Context, pkg manifest.PackageName) (u *unpacked, rec buildRecord, err error) {
	e := a.e
	info, err := e.cfg.Store.StatPackage(ctx, pkg)
	if err != nil {
		return nil, rec, bucketError{err}
	}
	if free, err := freeSpace(e.buildsDir(a.env)); err == nil && free < info.Size {
		return nil, rec, fmt.Errorf("%w: %d bytes free, package is %d bytes", ErrNoSpace, free, info.Size)
	}
	var sig []byte
	if len(e.cfg.VerifyKeys) > 0 {
		sig, err = e.cfg.Store.ReadSignature(ctx, pkg)
		if errors.Is(err, blobstore.ErrNotFound) {
			return nil, rec, fmt.Errorf("%w: no %s beside it", ErrUnsigned, blobstore.SignatureSuffix)
		}
		if err != nil {
			return nil, rec, bucketError{err}
		}
	}
	body, info, err := e.cfg.Store.OpenPackage(ctx, pkg)
	if err != nil {
		return nil, rec, bucketError{err}
	}
	defer body.Close()

	dir, err := os.MkdirTemp(e.buildsDir(a.env), tmpPrefix+pkg.ID()+"-")
	if err != nil {
		return nil, rec, err
	}
	defer func() {
		// Nothing ever ran from dir: a refused package leaves no trace.
		if err != nil {
			removeAll(dir)
		}
	}()
	h := sha256.New()
	var sh *signing.Hasher
	var n int64
	sinks := []io.Writer{h, counter{&n}}
	if len(e.cfg.VerifyKeys) > 0 {
		sh = signing.NewHasher()
		sinks = append(sinks, sh)
	}
	r := io.TeeReader(bucketReader{body}, io.MultiWriter(sinks...))
	format := pkg.Format
	if info.Meta.Format != "" {
		format = info.Meta.Format
	}
	stats, modes, xerr := unpack.ExtractDeferred(r, format, dir, e.cfg.MaxUnpack)
	var be bucketError
	if xerr != nil && errors.As(xerr, &be) {
		a.res.Downloaded += n
		return nil, rec, xerr
	}
	// Hash what the archive did not need (padding, trailing data): the
	// checksum covers the whole object.
	if _, err := io.Copy(io.Discard, r); err != nil {
		a.res.Downloaded += n
		return nil, rec, err
	}
	a.res.Downloaded += n
	sum := hex.EncodeToString(h.Sum(nil))
	if sum != info.Meta.SHA256 {
		return nil, rec, fmt.Errorf("%w: object hashes to %s, its metadata says %s", ErrChecksum, sum, info.Meta.SHA256)
	}
	if sh != nil {
		if err := sh.Verify(e.cfg.VerifyKeys, sig, pkg.String(), sum); err != nil {
			return nil, rec, err
		}
	}
	if xerr != nil {
		return nil, rec, xerr
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, rec, err
	}
	a.log.Info("package downloaded", "bytes", n, "files", stats.Files, "unpacked_bytes", stats.Bytes)
	return &unpacked{dir: dir, modes: modes}, buildRecord{
		Package: pkg.String(),
		Commit:  info.Meta.Commit,
		Branch:  info.Meta.Branch,
		Repo:    info.Meta.Repo,
		URL:     packageURL(e.cfg.Store.URL(), pkg),
	}, nil
}

// packageURL returns the URL of pkg's object in the bucket at bucketURL,
// BUILD_URL in scripts.
func packageURL(bucketURL string, pkg manifest.PackageName) string {
	base, query, _ := strings.Cut(bucketURL, "?")
	u := strings.TrimSuffix(base, "/") + "/" + blobstore.PackageKey(pkg)
	if query != "" {
		u += "?" + query
	}
	return u
}
