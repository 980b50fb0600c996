package blobstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"gocloud.dev/blob"
)

// s3Driver is the s3:// backend. An object's Version is its ETag; the
// server enforces If-Match and If-None-Match: * on PUT, which not every
// S3-compatible server does (CheckConditionalWrites finds out). Small
// documents are written with the S3 client gocloud holds, because only the
// PUT's own response carries the ETag of what it wrote: a HEAD afterwards
// could return another writer's.
type s3Driver struct {
	portable
	client *s3.Client
	bucket string
	prefix string
}

func newS3Driver(p portable, bucket, prefix string) (*s3Driver, error) {
	var c *s3.Client
	if !p.b.As(&c) {
		return nil, errors.New("s3: no client")
	}
	return &s3Driver{portable: p, client: c, bucket: bucket, prefix: prefix}, nil
}

func (d *s3Driver) read(ctx context.Context, key string) (document, error) {
	r, data, err := d.readAll(ctx, key)
	if err != nil {
		return document{}, err
	}
	var out s3.GetObjectOutput
	if !r.As(&out) || out.ETag == nil || *out.ETag == "" {
		return document{}, fmt.Errorf("blobstore: read %s: s3 gave no ETag", key)
	}
	return document{data, Version(*out.ETag), r.ModTime()}, nil
}

// listed is the ETag an S3 listing carries for each object, and the MD5
// it is for a single-part upload.
func (d *s3Driver) listed(_ context.Context, o *blob.ListObject) (Version, string, error) {
	var obj s3types.Object
	if !o.As(&obj) || obj.ETag == nil || *obj.ETag == "" {
		return "", "", fmt.Errorf("blobstore: list %s: s3 gave no ETag", o.Key)
	}
	return Version(*obj.ETag), listedMD5(o), nil
}

func (d *s3Driver) stat(ctx context.Context, key string) (Version, error) {
	a, err := d.attrs(ctx, key)
	if err != nil || a == nil {
		return "", err
	}
	if a.ETag == "" {
		return "", fmt.Errorf("blobstore: stat %s: s3 gave no ETag", key)
	}
	return Version(a.ETag), nil
}

func (d *s3Driver) write(ctx context.Context, key string, data []byte, ifVersion Version) (Version, error) {
	ct := contentType(key)
	in := &s3.PutObjectInput{Bucket: &d.bucket, Key: ptr(d.prefix + key), Body: bytes.NewReader(data), ContentType: &ct}
	if ifVersion == "" {
		in.IfNoneMatch = ptr("*")
	} else {
		in.IfMatch = ptr(string(ifVersion))
	}
	out, err := d.client.PutObject(ctx, in)
	if err != nil {
		if isS3Conflict(err, ifVersion != "") {
			return "", conflict(key)
		}
		return "", fmt.Errorf("blobstore: write %s: %w", key, err)
	}
	if out.ETag == nil || *out.ETag == "" {
		return "", fmt.Errorf("blobstore: write %s: s3 gave no ETag", key)
	}
	return Version(*out.ETag), nil
}

// isS3Conflict reports S3's answers to a write whose condition failed: 412,
// 409 ConditionalRequestConflict for two conditional writes racing on one
// key, and 404 for an If-Match on a missing object.
func isS3Conflict(err error, ifMatch bool) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && (ae.ErrorCode() == "ConditionalRequestConflict" || ae.ErrorCode() == "PreconditionFailed") {
		return true
	}
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) {
		return false
	}
	switch re.HTTPStatusCode() {
	case http.StatusPreconditionFailed, http.StatusConflict:
		return true
	case http.StatusNotFound:
		return ifMatch
	}
	return false
}

func (d *s3Driver) seal(ctx context.Context, staging, key string, md map[string]string) error {
	err := d.b.Copy(ctx, key, staging, &blob.CopyOptions{BeforeCopy: func(as func(any) bool) error {
		var in *s3.CopyObjectInput
		if !as(&in) {
			return errors.New("s3: no copy input")
		}
		in.MetadataDirective = s3types.MetadataDirectiveReplace
		in.Metadata = make(map[string]string, len(md))
		for k, v := range md {
			in.Metadata[k] = url.PathEscape(v) // as s3blob stores (and unescapes) metadata
		}
		in.ContentType = ptr("application/octet-stream")
		return nil
	}})
	return classify("seal", key, err)
}

func (d *s3Driver) checkConditional(ctx context.Context) error {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	return probeConditional(ctx, d, d.b.Delete, uploadsPrefix+"probe-"+hex.EncodeToString(rnd[:]))
}

func ptr[T any](v T) *T { return &v }
