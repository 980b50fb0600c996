package blobstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"cloud.google.com/go/storage"
	"gocloud.dev/blob"
	"google.golang.org/api/googleapi"
)

// gcsDriver is the gs:// backend. An object's Version is its generation
// ("g" and the number); GCS enforces the conditions itself
// (ifGenerationMatch, ifGenerationMatch=0 for absent). Small documents are
// written with the storage client gocloud holds, because only its writer
// returns the generation the write created: a second request to learn it
// could see another writer's.
type gcsDriver struct {
	portable
	bucket *storage.BucketHandle
	prefix string
}

func newGCSDriver(p portable, bucket, prefix string) (*gcsDriver, error) {
	var c *storage.Client
	if !p.b.As(&c) {
		return nil, errors.New("gcs: no storage client")
	}
	return &gcsDriver{portable: p, bucket: c.Bucket(bucket), prefix: prefix}, nil
}

func generation(g int64) Version { return Version("g" + strconv.FormatInt(g, 10)) }

func (d *gcsDriver) read(ctx context.Context, key string) (document, error) {
	r, data, err := d.readAll(ctx, key)
	if err != nil {
		return document{}, err
	}
	var sr *storage.Reader
	if !r.As(&sr) {
		return document{}, fmt.Errorf("blobstore: read %s: gcs gave no generation", key)
	}
	return document{data, generation(sr.Attrs.Generation), r.ModTime()}, nil
}

// listed is the generation and MD5 a GCS listing carries for each object.
func (d *gcsDriver) listed(_ context.Context, o *blob.ListObject) (Version, string, error) {
	var oa storage.ObjectAttrs
	if !o.As(&oa) {
		return "", "", fmt.Errorf("blobstore: list %s: gcs gave no generation", o.Key)
	}
	return generation(oa.Generation), listedMD5(o), nil
}

func (d *gcsDriver) stat(ctx context.Context, key string) (Version, error) {
	a, err := d.attrs(ctx, key)
	if err != nil || a == nil {
		return "", err
	}
	var oa storage.ObjectAttrs
	if !a.As(&oa) {
		return "", fmt.Errorf("blobstore: stat %s: gcs gave no generation", key)
	}
	return generation(oa.Generation), nil
}

func (d *gcsDriver) write(ctx context.Context, key string, data []byte, ifVersion Version) (Version, error) {
	cond := storage.Conditions{DoesNotExist: true}
	if ifVersion != "" {
		g, err := strconv.ParseInt(strings.TrimPrefix(string(ifVersion), "g"), 10, 64)
		if err != nil || !strings.HasPrefix(string(ifVersion), "g") {
			return "", fmt.Errorf("blobstore: write %s: %q is not a GCS version", key, ifVersion)
		}
		cond = storage.Conditions{GenerationMatch: g}
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := d.bucket.Object(d.prefix + key).If(cond).NewWriter(wctx)
	w.ContentType = contentType(key)
	w.ChunkSize = 0 // one request: these are small documents
	if _, err := w.Write(data); err != nil {
		cancel()
		_ = w.Close()
		return "", d.writeErr(key, err, ifVersion)
	}
	if err := w.Close(); err != nil {
		return "", d.writeErr(key, err, ifVersion)
	}
	return generation(w.Attrs().Generation), nil
}

// writeErr classifies a failed conditional write: 412 is the condition
// failing, and so is 404 for a generation match on a missing object.
func (d *gcsDriver) writeErr(key string, err error, ifVersion Version) error {
	var ge *googleapi.Error
	if errors.As(err, &ge) && (ge.Code == http.StatusPreconditionFailed || ge.Code == http.StatusNotFound && ifVersion != "") {
		return conflict(key)
	}
	if ifVersion != "" && errors.Is(err, storage.ErrObjectNotExist) {
		return conflict(key)
	}
	return fmt.Errorf("blobstore: write %s: %w", key, err)
}

func (d *gcsDriver) seal(ctx context.Context, staging, key string, md map[string]string) error {
	err := d.b.Copy(ctx, key, staging, &blob.CopyOptions{BeforeCopy: func(as func(any) bool) error {
		var c *storage.Copier
		if !as(&c) {
			return errors.New("gcs: no copier")
		}
		c.ContentType = "application/octet-stream"
		c.Metadata = md
		return nil
	}})
	return classify("seal", key, err)
}

// checkConditional returns nil: GCS and its emulators enforce generation
// conditions.
func (d *gcsDriver) checkConditional(context.Context) error { return nil }
