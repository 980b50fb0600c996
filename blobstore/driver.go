package blobstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// driver is what differs between backends. Open picks one per Store, as
// gocloud picks a driver.Bucket, so that each rule (how an object is
// versioned, how a condition is enforced, how writers are serialised) is
// decided in exactly one place: file.go, mem.go, gcs.go, s3.go. Every
// method returns errors already wrapped with the operation and key, with
// ErrNotFound and ErrConflict where they apply.
type driver interface {
	// read returns key's content, Version and modification time.
	read(ctx context.Context, key string) (document, error)
	// stat returns key's current Version without transferring its body,
	// "" when it does not exist.
	stat(ctx context.Context, key string) (Version, error)
	// write stores data at key if its Version is ifVersion ("" = it must
	// not exist) and returns the Version of this very write.
	write(ctx context.Context, key string, data []byte, ifVersion Version) (Version, error)
	// put stores data at key unconditionally.
	put(ctx context.Context, key string, data []byte) error
	// delete removes key; a key that does not exist is ErrNotFound.
	delete(ctx context.Context, key string) error
	// attributes returns key's attributes (a package's metadata).
	attributes(ctx context.Context, key string) (*blob.Attributes, error)
	// stage opens a writer for a package's staging object.
	stage(ctx context.Context, key string) (io.WriteCloser, error)
	// seal makes the staging object visible at key with metadata md. The
	// caller holds the package name's claim.
	seal(ctx context.Context, staging, key string, md map[string]string) error
	// checkConditional is Store.CheckConditionalWrites.
	checkConditional(ctx context.Context) error
	// listed returns, from an object's listing entry, its Version (as stat
	// would give it) and the hex MD5 of its content, without a request per
	// object where the backend's listing carries them.
	listed(ctx context.Context, o *blob.ListObject) (Version, string, error)
	// next is it.Next, with the backend's transient listing failures
	// retried (it.Next asks again for the page that failed).
	next(ctx context.Context, it *blob.ListIterator) (*blob.ListObject, error)
}

// listedMD5 is the hex MD5 a listing gives, "" when it gives none (an S3
// multipart upload).
func listedMD5(o *blob.ListObject) string { return hex.EncodeToString(o.MD5) }

// document is an object read whole.
type document struct {
	data     []byte
	version  Version
	modified time.Time
}

// portable is what every backend does through gocloud's portable API
// alone; drivers embed it and replace what they must.
type portable struct{ b *blob.Bucket }

func (portable) next(ctx context.Context, it *blob.ListIterator) (*blob.ListObject, error) {
	return it.Next(ctx)
}

// readAll returns key's reader (closed) and content. A document larger
// than MaxDocumentSize is refused without reading its body, and so is one
// that grows past it while it is read; the read asks for no more than that
// many bytes, so a huge object costs no more than a large document.
func (p portable) readAll(ctx context.Context, key string) (*blob.Reader, []byte, error) {
	r, err := p.b.NewRangeReader(ctx, key, 0, MaxDocumentSize+1, nil)
	if err != nil {
		return nil, nil, classify("read", key, err)
	}
	defer r.Close()
	if err := checkSize(key, r.Size()); err != nil {
		return nil, nil, err
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxDocumentSize+1))
	if err != nil {
		return nil, nil, classify("read", key, err)
	}
	if err := checkSize(key, int64(len(data))); err != nil {
		return nil, nil, err
	}
	return r, data, nil
}

// attrs returns key's attributes, nil when it does not exist.
func (p portable) attrs(ctx context.Context, key string) (*blob.Attributes, error) {
	a, err := p.b.Attributes(ctx, key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, nil
	}
	return a, classify("stat", key, err)
}

func (p portable) put(ctx context.Context, key string, data []byte) error {
	err := p.b.WriteAll(ctx, key, data, &blob.WriterOptions{ContentType: contentType(key)})
	return classify("write", key, err)
}

func (p portable) delete(ctx context.Context, key string) error {
	return classify("delete", key, p.b.Delete(ctx, key))
}

func (p portable) attributes(ctx context.Context, key string) (*blob.Attributes, error) {
	a, err := p.b.Attributes(ctx, key)
	return a, classify("stat", key, err)
}

func (p portable) stage(ctx context.Context, key string) (io.WriteCloser, error) {
	w, err := p.b.NewWriter(ctx, key, &blob.WriterOptions{
		ContentType: "application/octet-stream",
		BufferSize:  16 << 20, // S3 part size / GCS chunk: fewer round trips for large packages
	})
	return w, classify("upload", key, err)
}

// copyWithMetadata seals on backends whose Copy cannot replace metadata,
// by copying the staging object through the client. Callers that need
// readers never to see a half-written object hold their lock around it.
func (p portable) copyWithMetadata(ctx context.Context, staging, key string, md map[string]string) error {
	r, err := p.b.NewReader(ctx, staging, nil)
	if err != nil {
		return classify("seal", key, err)
	}
	defer r.Close()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := p.b.NewWriter(wctx, key, &blob.WriterOptions{ContentType: "application/octet-stream", Metadata: md})
	if err != nil {
		return classify("seal", key, err)
	}
	if _, err := io.Copy(w, r); err != nil {
		cancel()
		_ = w.Close()
		return classify("seal", key, err)
	}
	return classify("seal", key, w.Close())
}

// probeConditional checks that the store behind d refuses a write-if-absent
// of an existing object and a write with a stale Version, on a probe
// object under uploads/ that it deletes afterwards.
func probeConditional(ctx context.Context, d driver, del func(ctx context.Context, key string) error, key string) error {
	defer func() { _ = del(context.WithoutCancel(ctx), key) }()
	v1, err := d.write(ctx, key, []byte("1"), "")
	if err != nil {
		return fmt.Errorf("blobstore: probe conditional writes: %w", err)
	}
	if _, err := d.write(ctx, key, []byte("2"), ""); err == nil {
		return fmt.Errorf("blobstore: %w: a create-if-absent (If-None-Match: *) of an existing object succeeded", ErrUnconditionalStore)
	} else if !errors.Is(err, ErrConflict) {
		return fmt.Errorf("blobstore: probe conditional writes: %w", err)
	}
	if _, err := d.write(ctx, key, []byte("3"), v1); err != nil {
		return fmt.Errorf("blobstore: probe conditional writes: a write with the current version failed: %w", err)
	}
	if _, err := d.write(ctx, key, []byte("4"), v1); err == nil {
		return fmt.Errorf("blobstore: %w: a write with a stale version (If-Match) succeeded", ErrUnconditionalStore)
	} else if !errors.Is(err, ErrConflict) {
		return fmt.Errorf("blobstore: probe conditional writes: %w", err)
	}
	return nil
}
