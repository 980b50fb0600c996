package pkginstall

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/backoff"
	"github.com/pushpull/pushpull/internal/signing"
	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkgformat"
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
	modes *pkgformat.DirModes
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
	var u *unpacked
	var rec buildRecord
	err := a.bucketRetry(ctx, "download", func() (err error) {
		u, rec, err = a.fetch(ctx, pkg)
		return err
	})
	if err != nil {
		return nil, buildRecord{}, fmt.Errorf("pkginstall: download %s: %w", pkg, err)
	}
	return u, rec, nil
}

// describe reads pkg's metadata (one small request, retried like a
// download) and returns its build record, for the BUILD_* variables of the
// steps before the download.
func (a *attempt) describe(ctx context.Context, pkg manifest.PackageName) (buildRecord, error) {
	e := a.e
	if e.cfg.Store == nil {
		return buildRecord{}, fmt.Errorf("pkginstall: download %s: no bucket configured", pkg)
	}
	var info blobstore.PackageInfo
	err := a.bucketRetry(ctx, "package metadata", func() (err error) {
		if info, err = e.cfg.Store.StatPackage(ctx, pkg); err != nil {
			return bucketError{err}
		}
		return nil
	})
	if err != nil {
		return buildRecord{}, fmt.Errorf("pkginstall: download %s: %w", pkg, err)
	}
	return a.record(pkg, info), nil
}

// record is the build record of pkg, described by info.
func (a *attempt) record(pkg manifest.PackageName, info blobstore.PackageInfo) buildRecord {
	return buildRecord{
		Package: pkg.String(),
		Commit:  info.Meta.Commit,
		Branch:  info.Meta.Branch,
		Repo:    info.Meta.Repo,
		URL:     packageURL(a.e.cfg.Store.URL(), pkg),
	}
}

// bucketRetry calls fn until it succeeds, fails with an error that is not a
// transient bucket error, has been tried Config.DownloadTries times, or ctx
// ends, waiting Config.Backoff, then twice that, and so on, between tries.
func (a *attempt) bucketRetry(ctx context.Context, what string, fn func() error) error {
	e := a.e
	for try := 1; ; try++ {
		err := fn()
		if err == nil || !transient(err) || try >= e.cfg.DownloadTries || ctx.Err() != nil {
			return err
		}
		wait := backoff.Delay(try, e.cfg.Backoff, 0)
		a.log.Warn("bucket read failed; trying again", "op", what, "try", try, "wait", wait, "err", err)
		if backoff.Sleep(ctx, wait) != nil {
			return err
		}
	}
}

// fetch is one try of download.
func (a *attempt) fetch(ctx context.Context, pkg manifest.PackageName) (u *unpacked, rec buildRecord, err error) {
	e := a.e
	info, err := e.cfg.Store.StatPackage(ctx, pkg)
	if err != nil {
		return nil, rec, bucketError{err}
	}
	// The unpacked size release recorded is what the build takes on disk;
	// a package released before it was recorded is checked by its object
	// size, a lower bound.
	need, what := info.Meta.Size, "unpacks to"
	switch {
	case pkg.Format == manifest.FormatDeb:
		need, what = info.Size+info.Meta.Size, "is kept and installs" // the .deb stays beside what dpkg installs
	case need == 0:
		need, what = info.Size, "is"
	}
	if free, err := freeSpace(e.buildsDir(a.env)); err == nil && free < need {
		return nil, rec, fmt.Errorf("%w: %d bytes free, package %s %d bytes", ErrNoSpace, free, what, need)
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
	lim := e.cfg.MaxUnpack
	if n := info.Meta.Size; n > 0 && format.IsArchive() && (lim.MaxBytes <= 0 || n < lim.MaxBytes) {
		lim.MaxBytes = n // an archive that unpacks to more than recorded stops at once
	}
	stats, modes, xerr := pkgformat.ExtractDeferred(r, format, dir, lim)
	if errors.Is(xerr, pkgformat.ErrTooLarge) && lim.MaxBytes == info.Meta.Size {
		xerr = fmt.Errorf("%w (its metadata records %d bytes unpacked)", xerr, info.Meta.Size)
	}
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
	rec = a.record(pkg, info)
	if format == manifest.FormatDeb {
		if rec.Deb, err = debPackage(ctx, filepath.Join(dir, pkgformat.DebFile)); err != nil {
			return nil, rec, err
		}
	}
	a.log.Info("package downloaded", "package", pkg.String(), "bytes", n, "files", stats.Files, "unpacked_bytes", stats.Bytes)
	return &unpacked{dir: dir, modes: modes}, rec, nil
}

// debPackage returns the Debian package name in the control file of the
// .deb at path, read by dpkg-deb (which runs nothing of the package).
func debPackage(ctx context.Context, path string) (string, error) {
	out, err := exec.CommandContext(ctx, "dpkg-deb", "--field", path, "Package").Output()
	name := strings.TrimSpace(string(out))
	if errors.Is(err, exec.ErrNotFound) {
		return "", fmt.Errorf("pkginstall: dpkg-deb is not installed: .deb packages need Debian's dpkg on the host: %w", err)
	}
	if err != nil || name == "" {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
		}
		return "", fmt.Errorf("unpack: deb %w: dpkg-deb cannot read its Package: %v", pkgformat.ErrCorrupt, err)
	}
	return name, nil
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
