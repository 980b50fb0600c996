package blobstore_test

import (
	"path/filepath"
	"testing"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/testing/testserver"
)

func openURL(t *testing.T, url string) *blobstore.Store {
	t.Helper()
	s, err := blobstore.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fileBackend is a file:// backend under prefix (as it appears in the
// URL, query-escaped) whose keys live under dirPrefix in the directory.
func fileBackend(name, prefix, dirPrefix string) backend {
	return backend{
		name: name,
		open: func(t *testing.T) *blobstore.Store {
			u := "file://" + t.TempDir()
			if prefix != "" {
				u += "?prefix=" + prefix
			}
			return openURL(t, u)
		},
		path: func(s *blobstore.Store, key string) string {
			return filepath.Join(s.LocalDir(), filepath.FromSlash(dirPrefix+key))
		},
	}
}

// fileBackends are the file:// variants: bare, under a prefix, and under
// a prefix that keeps packages on fileblob's portable path instead of the
// hard-link seal.
func fileBackends() []backend {
	return []backend{
		fileBackend("file", "", ""),
		fileBackend("file-prefix", "team-a/", "team-a/"),
		fileBackend("file-portable", "team%20a/", "team a/"),
	}
}

// backends returns the backends of the contract suite: mem://, the file://
// variants, GCS and S3. The GCS and S3 servers are real protocol servers,
// started once for the suite; each case gets a fresh bucket.
func backends(t *testing.T) []backend {
	gcs := testserver.StartGCS(t)
	gcs.Setenv(t)
	s3 := testserver.StartS3(t)
	s3.Setenv(t)
	bs := []backend{{name: "mem", open: func(t *testing.T) *blobstore.Store { return openURL(t, "mem://") }}}
	bs = append(bs, fileBackends()...)
	return append(bs,
		backend{name: "gcs", open: func(t *testing.T) *blobstore.Store { return openURL(t, gcs.Bucket(t, "")) }, count: gcs.BytesSent},
		backend{name: "s3", open: func(t *testing.T) *blobstore.Store { return openURL(t, s3.Bucket(t, "")) }, count: s3.BytesSent},
	)
}
