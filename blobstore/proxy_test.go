package blobstore_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/internal/testing/testserver"
)

// isWriteOf reports whether r uploads key (an S3 PUT, a GCS upload POST).
func isWriteOf(r *http.Request, key string) bool {
	return (r.Method == http.MethodPut || r.Method == http.MethodPost) &&
		(strings.HasSuffix(r.URL.Path, "/"+key) || r.URL.Query().Get("name") == key)
}

// TestWriteVersionIsItsOwn: a second writer changes the object between the
// first writer's PUT and its answer. The Version the first writer gets must
// be that of its own write, so reusing it is refused instead of silently
// overwriting the second writer's change.
func TestWriteVersionIsItsOwn(t *testing.T) {
	gcs := testserver.StartGCS(t)
	s3 := testserver.StartS3(t)
	s3.Setenv(t)
	for _, tc := range []struct {
		name string
		open func(t *testing.T) (direct, proxied *blobstore.Store, p *deploytest.Proxy)
	}{
		{"gcs", func(t *testing.T) (*blobstore.Store, *blobstore.Store, *deploytest.Proxy) {
			t.Setenv("STORAGE_EMULATOR_HOST", gcs.Host)
			u := gcs.Bucket(t, "")
			direct := openURL(t, u)
			p := deploytest.StartProxy(t, "http://"+gcs.Host)
			t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(p.URL, "http://"))
			return direct, openURL(t, u), p
		}},
		{"s3", func(t *testing.T) (*blobstore.Store, *blobstore.Store, *deploytest.Proxy) {
			u := s3.Bucket(t, "")
			p := deploytest.StartProxy(t, s3.Endpoint)
			return openURL(t, u), openURL(t, strings.Replace(u, s3.Endpoint, p.URL, 1)), p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			direct, a, p := tc.open(t)
			ctx := t.Context()
			const key = "servers/interleave.json"
			v0, err := direct.Write(ctx, key, []byte(`"v0"`), "")
			if err != nil {
				t.Fatal(err)
			}
			var once sync.Once
			var bErr error
			p.SetHooks(nil, func(r *http.Request) {
				if !isWriteOf(r, key) {
					return
				}
				once.Do(func() {
					_, cur, err := direct.Read(ctx, key)
					if err == nil {
						_, err = direct.Write(ctx, key, []byte(`"second writer"`), cur)
					}
					bErr = err
				})
			})
			va, err := a.Write(ctx, key, []byte(`"first writer"`), v0)
			if err != nil {
				t.Fatalf("first writer: %v", err)
			}
			if bErr != nil {
				t.Fatalf("second writer: %v", bErr)
			}
			data, vb, err := direct.Read(ctx, key)
			if err != nil || string(data) != `"second writer"` {
				t.Fatalf("read = %q, %v", data, err)
			}
			if va == vb {
				t.Fatalf("the first writer got the second writer's version %q", vb)
			}
			if _, err := a.Write(ctx, key, []byte(`"first writer again"`), va); !errors.Is(err, blobstore.ErrConflict) {
				t.Fatalf("write with the first writer's version over the second's change: %v, want ErrConflict", err)
			}
		})
	}
}

// TestUnconditionalStoreRefused: behind a proxy that drops If-Match and
// If-None-Match from every request (and signs it again), as S3 servers that
// ignore them behave, CheckConditionalWrites fails with
// ErrUnconditionalStore; without the proxy it passes.
func TestUnconditionalStoreRefused(t *testing.T) {
	s3 := testserver.StartS3(t)
	s3.Setenv(t)
	u := s3.Bucket(t, "")
	if err := openURL(t, u).CheckConditionalWrites(t.Context()); err != nil {
		t.Fatalf("versitygw: %v", err)
	}
	for _, drop := range []string{"If-None-Match", "If-Match"} {
		t.Run(drop, func(t *testing.T) {
			p := deploytest.StartProxy(t, s3.Endpoint)
			signer := v4.NewSigner()
			creds := aws.Credentials{AccessKeyID: s3.AccessKey, SecretAccessKey: s3.SecretKey}
			p.SetHooks(func(r *http.Request) {
				if r.Header.Get(drop) == "" {
					return
				}
				r.Header.Del(drop)
				r.Header.Del("Authorization")
				body, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(body))
				if err := signer.SignHTTP(r.Context(), creds, r, r.Header.Get("X-Amz-Content-Sha256"), "s3", s3.Region, time.Now()); err != nil {
					t.Errorf("sign: %v", err)
				}
			}, nil)
			s := openURL(t, strings.Replace(u, s3.Endpoint, p.URL, 1))
			err := s.CheckConditionalWrites(t.Context())
			if !errors.Is(err, blobstore.ErrUnconditionalStore) {
				t.Fatalf("CheckConditionalWrites behind a proxy dropping %s: %v, want ErrUnconditionalStore", drop, err)
			}
			t.Log(err)
		})
	}
}
