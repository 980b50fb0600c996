//go:build stores

package blobstore_test

import (
	"testing"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/testing/testserver"
)

// TestContractStores runs the contract suite against more S3-compatible
// stores than `make test` starts: `make test-stores` installs them and runs
// this (build tag stores). A store listed here passes pushpull's contract,
// conditional writes included; the README lists them.
func TestContractStores(t *testing.T) {
	minio := testserver.StartMinIO(t)
	minio.Setenv(t)
	b := backend{name: "minio", open: func(t *testing.T) *blobstore.Store { return openURL(t, minio.Bucket(t, "")) }, count: minio.BytesSent}
	for _, c := range contractCases {
		t.Run(b.name+"/"+c.name, func(t *testing.T) { c.run(t, b) })
	}
}
