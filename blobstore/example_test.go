package blobstore_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
)

// Two editors read the same manifest; the second write is refused instead
// of silently overwriting the first.
func ExampleStore_WriteManifest() {
	ctx := context.Background()
	s, err := blobstore.Open(ctx, "mem://")
	if err != nil {
		panic(err)
	}
	defer s.Close()

	hello, _ := manifest.ParsePackageName("hello/hello-20261122T101500Z-0123456789ab.tar.zst")
	api, _ := manifest.ParsePackageName("api/api-20261122T101500Z-0123456789ab.tar.zst")

	m1, v, _ := s.ReadManifest(ctx, manifest.Server("web-1")) // absent: empty manifest, version ""
	m2 := m1.Clone()

	m1.SetPackage(hello)
	if _, err := s.WriteManifest(ctx, manifest.Server("web-1"), m1, v); err != nil {
		panic(err)
	}
	m2.SetPackage(api)
	_, err = s.WriteManifest(ctx, manifest.Server("web-1"), m2, v)
	fmt.Println(errors.Is(err, blobstore.ErrConflict))

	// UpdateManifest re-reads and retries, so both changes land.
	u, _ := s.UpdateManifest(ctx, manifest.Server("web-1"), func(m *manifest.Manifest, existed bool) error {
		m.SetPackage(api)
		return nil
	})
	fmt.Println(u.After.Revision, u.After.Apps())
	// Output:
	// true
	// 2 [hello api]
}
