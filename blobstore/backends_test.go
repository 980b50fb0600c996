package blobstore_test

import (
	"testing"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/testserver"
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

// backends returns the backends of the contract suite: mem://, file:// (bare,
// under a prefix, and under a prefix that keeps packages on fileblob's
// portable path instead of the hard-link seal), GCS and S3. The GCS and S3
// servers are real protocol servers, started once for the suite; each case
// gets a fresh bucket.
func backends(t *testing.T) []backend {
	gcs := testserver.StartGCS(t)
	gcs.Setenv(t)
	s3 := testserver.StartS3(t)
	s3.Setenv(t)
	return []backend{
		{name: "mem", open: func(t *testing.T) *blobstore.Store { return openURL(t, "mem://") }},
		{name: "file", open: func(t *testing.T) *blobstore.Store { return openURL(t, "file://"+t.TempDir()) }},
		{name: "file-prefix", open: func(t *testing.T) *blobstore.Store { return openURL(t, "file://"+t.TempDir()+"?prefix=team-a/") }},
		{name: "file-portable", open: func(t *testing.T) *blobstore.Store { return openURL(t, "file://"+t.TempDir()+"?prefix=team%20a/") }},
		{name: "gcs", open: func(t *testing.T) *blobstore.Store { return openURL(t, gcs.Bucket(t, "")) }, count: gcs.BytesSent},
		{name: "s3", open: func(t *testing.T) *blobstore.Store { return openURL(t, s3.Bucket(t, "")) }, count: s3.BytesSent},
	}
}
