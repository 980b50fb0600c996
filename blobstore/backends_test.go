package blobstore_test

import (
	"testing"

	"github.com/pushpull/pushpull/blobstore"
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

func backends(t *testing.T) []backend {
	return []backend{
		{name: "mem", open: func(t *testing.T) *blobstore.Store { return openURL(t, "mem://") }},
		{name: "file", open: func(t *testing.T) *blobstore.Store { return openURL(t, "file://"+t.TempDir()) }},
	}
}
