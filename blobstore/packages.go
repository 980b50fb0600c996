package blobstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
	"sync"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/pushpull/pushpull/manifest"
)

// SignatureSuffix is appended to a package's key for its minisign signature.
const SignatureSuffix = ".minisig"

// PackageInfo describes a stored package.
type PackageInfo struct {
	Name manifest.PackageName
	Meta manifest.PackageMeta
	Size int64
}

// PackageWriter streams one package into the bucket. Bytes written to it
// are hashed as they pass and uploaded to a staging object under uploads/;
// Close seals the package: the object appears under its name, with its
// metadata and sha256. Until Close returns nil nothing is visible under the
// package's name.
//
// This two-step shape exists because object stores take metadata when an
// upload starts, and the sha256 is known only at its end; sealing is a
// server-side copy on GCS and S3, and a hard link plus fileblob's attributes
// sidecar on file:// (no second copy of the bytes; see file.go). Because servers do not all honour
// preconditions on copies, the name is made exclusive differently: the
// writer first creates a claim object (uploads/{name}.claim) with a
// write-if-absent, which every backend enforces, then checks that no package
// of that name exists, and holds the claim until it has sealed or aborted.
// Two releases of one name can therefore never both succeed. A release that
// crashes leaves its claim behind; the name, which carries the build time to
// the second, is then simply not reusable.
//
// A PackageWriter is not safe for concurrent use. Exactly one of Close or
// Abort must be called.
type PackageWriter struct {
	s       *Store
	ctx     context.Context
	cancel  context.CancelFunc
	name    manifest.PackageName
	meta    manifest.PackageMeta
	staging string
	claim   string
	w       io.WriteCloser // a *blob.Writer, or on file:// the staging file
	hash    hash.Hash
	n       int64
	sum     string
	done    bool
}

// NewPackageWriter starts writing package name with metadata meta (its
// SHA256 field is ignored and filled in by Close). It fails early with
// ErrConflict when a package of that name already exists.
func (s *Store) NewPackageWriter(ctx context.Context, name manifest.PackageName, meta manifest.PackageMeta) (*PackageWriter, error) {
	if err := manifest.CheckName("app", name.App); err != nil {
		return nil, fmt.Errorf("blobstore: package: %w", err)
	}
	key := PackageKey(name)
	claim := uploadsPrefix + name.String() + ".claim"
	if _, err := s.Write(ctx, claim, []byte(name.String()), ""); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("blobstore: package %s: another release of this name is under way: %w", name, ErrConflict)
		}
		return nil, err
	}
	release := func() { _ = s.bucket.Delete(context.WithoutCancel(ctx), claim) }
	if exists, err := s.bucket.Exists(ctx, key); err != nil || exists {
		release()
		if err != nil {
			return nil, classify("stat", key, err)
		}
		return nil, fmt.Errorf("blobstore: package %s: %w (packages are never overwritten)", name, ErrConflict)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	staging := uploadsPrefix + name.String() + "." + hex.EncodeToString(rnd[:])
	wctx, cancel := context.WithCancel(ctx)
	w, err := s.d.stage(wctx, staging)
	if err != nil {
		cancel()
		release()
		return nil, err
	}
	meta.Format = name.Format
	return &PackageWriter{s: s, ctx: ctx, cancel: cancel, name: name, meta: meta, staging: staging, claim: claim, w: w, hash: sha256.New()}, nil
}

// parallelHashMin is the write size from which Write hashes in a second
// goroutine while the bytes go out: the compressor hands over one block at a
// time, and hashing then writing each in turn would make this the slowest
// stage of a release.
const parallelHashMin = 32 << 10

// Write uploads p.
func (pw *PackageWriter) Write(p []byte) (int, error) {
	var wg sync.WaitGroup
	if len(p) >= parallelHashMin {
		wg.Go(func() { pw.hash.Write(p) })
	} else {
		pw.hash.Write(p)
	}
	n, err := pw.w.Write(p)
	wg.Wait()
	pw.n += int64(n)
	if err != nil {
		return n, classify("upload", pw.staging, err)
	}
	return n, nil
}

// Size returns the number of bytes written so far.
func (pw *PackageWriter) Size() int64 { return pw.n }

// SHA256 returns the hex sha256 of the bytes written so far: once Close
// succeeded, that of the stored package. A release signs it before sealing.
func (pw *PackageWriter) SHA256() string {
	if pw.sum != "" {
		return pw.sum
	}
	return hex.EncodeToString(pw.hash.Sum(nil))
}

// Meta returns the metadata stored on the package, once Close succeeded.
func (pw *PackageWriter) Meta() manifest.PackageMeta { return pw.meta }

// Abort cancels the upload; nothing is left under the package's name. It is
// safe to call after Close (it then does nothing).
func (pw *PackageWriter) Abort() {
	if pw.done {
		return
	}
	pw.done = true
	pw.cancel()
	_ = pw.w.Close()
	pw.cleanup()
}

// cleanup removes the staging object and then releases the claim.
func (pw *PackageWriter) cleanup() {
	ctx := context.WithoutCancel(pw.ctx)
	_ = pw.s.bucket.Delete(ctx, pw.staging)
	_ = pw.s.bucket.Delete(ctx, pw.claim)
}

// Close finishes the upload and seals the package. On error nothing is
// visible under the package's name; the error wraps ErrConflict when a
// package of that name appeared meanwhile.
func (pw *PackageWriter) Close() error {
	if pw.done {
		return errors.New("blobstore: package writer already closed")
	}
	pw.done = true
	defer pw.cancel()
	defer pw.cleanup()
	if err := pw.w.Close(); err != nil {
		return classify("upload", pw.staging, err)
	}
	if err := pw.ctx.Err(); err != nil {
		return classify("upload", pw.staging, err)
	}
	pw.sum = hex.EncodeToString(pw.hash.Sum(nil))
	pw.meta.SHA256 = pw.sum
	return pw.s.d.seal(pw.ctx, pw.staging, PackageKey(pw.name), pw.meta.Map())
}

// OpenPackage opens package name for streaming and returns its description.
// The caller must close the reader, and must verify the bytes against
// info.Meta.SHA256 before trusting them.
func (s *Store) OpenPackage(ctx context.Context, name manifest.PackageName) (io.ReadCloser, PackageInfo, error) {
	info, err := s.StatPackage(ctx, name)
	if err != nil {
		return nil, PackageInfo{}, err
	}
	r, err := s.bucket.NewReader(ctx, PackageKey(name), nil)
	if err != nil {
		return nil, PackageInfo{}, classify("read", PackageKey(name), err)
	}
	return r, info, nil
}

// StatPackage returns the description of package name, from its metadata.
// A package without a valid sha256 in its metadata is an error.
func (s *Store) StatPackage(ctx context.Context, name manifest.PackageName) (PackageInfo, error) {
	key := PackageKey(name)
	a, err := s.d.attributes(ctx, key)
	if err != nil {
		return PackageInfo{}, err
	}
	meta, err := manifest.ParsePackageMeta(a.Metadata)
	if err != nil {
		return PackageInfo{}, fmt.Errorf("blobstore: %s: %w", key, err)
	}
	return PackageInfo{Name: name, Meta: meta, Size: a.Size}, nil
}

// ListPackageNames returns the names of app's packages, newest first, from
// one listing (no per-package requests). Objects whose names do not parse
// are ignored.
func (s *Store) ListPackageNames(ctx context.Context, app string) ([]manifest.PackageName, error) {
	if err := manifest.CheckName("app", app); err != nil {
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	prefix := PackagesPrefix + app + "/"
	var names []manifest.PackageName
	err := s.each(ctx, &blob.ListOptions{Prefix: prefix}, func(o *blob.ListObject) error {
		if strings.HasSuffix(o.Key, SignatureSuffix) {
			return nil
		}
		if p, err := manifest.ParsePackageName(strings.TrimPrefix(o.Key, PackagesPrefix)); err == nil && p.App == app {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(names, func(a, b manifest.PackageName) int { return b.Compare(a) })
	return names, nil
}

// listConcurrency bounds the metadata requests ListPackages has in flight.
const listConcurrency = 16

// ListPackages returns app's packages with their metadata, newest first.
// Metadata is fetched with up to 16 requests in flight.
func (s *Store) ListPackages(ctx context.Context, app string) ([]PackageInfo, error) {
	names, err := s.ListPackageNames(ctx, app)
	if err != nil {
		return nil, err
	}
	return s.StatPackages(ctx, names)
}

// StatPackages returns the descriptions of names, in the same order,
// fetched concurrently.
func (s *Store) StatPackages(ctx context.Context, names []manifest.PackageName) ([]PackageInfo, error) {
	infos := make([]PackageInfo, len(names))
	errs := make([]error, len(names))
	sem := make(chan struct{}, listConcurrency)
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			infos[i], errs[i] = s.StatPackage(ctx, n)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return infos, nil
}

// ListApps returns the apps that have a packages/ folder, sorted.
func (s *Store) ListApps(ctx context.Context) ([]string, error) {
	var apps []string
	err := s.each(ctx, &blob.ListOptions{Prefix: PackagesPrefix, Delimiter: "/"}, func(o *blob.ListObject) error {
		app := strings.TrimSuffix(strings.TrimPrefix(o.Key, PackagesPrefix), "/")
		if o.IsDir && manifest.CheckName("app", app) == nil {
			apps = append(apps, app)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(apps)
	return apps, nil
}

// WriteSignature stores sig beside package name. Signatures, like packages,
// are never overwritten: a second one is ErrConflict.
func (s *Store) WriteSignature(ctx context.Context, name manifest.PackageName, sig []byte) error {
	_, err := s.Write(ctx, PackageKey(name)+SignatureSuffix, sig, "")
	return err
}

// ReadSignature returns the signature stored beside package name; the error
// wraps ErrNotFound when the package is unsigned.
func (s *Store) ReadSignature(ctx context.Context, name manifest.PackageName) ([]byte, error) {
	data, _, err := s.Read(ctx, PackageKey(name)+SignatureSuffix)
	return data, err
}

// IsTransient reports whether err is a bucket error worth retrying: not a
// missing object, a conflict, a refusal or a bad argument.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) || errors.Is(err, context.Canceled) {
		return false
	}
	switch gcerrors.Code(err) {
	case gcerrors.NotFound, gcerrors.FailedPrecondition, gcerrors.PermissionDenied, gcerrors.InvalidArgument, gcerrors.Unimplemented, gcerrors.Canceled:
		return false
	}
	return true
}
