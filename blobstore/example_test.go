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
func ExampleStore_UpdateManifestAt() {
	ctx := context.Background()
	s, err := blobstore.Open(ctx, "mem://")
	if err != nil {
		panic(err)
	}
	defer s.Close()

	hello, _ := manifest.ParsePackageName("hello/hello-20261122T101500Z-0123456789ab.tar.zst")
	api, _ := manifest.ParsePackageName("api/api-20261122T101500Z-0123456789ab.tar.zst")

	_, v, _ := s.ReadManifest(ctx, manifest.Server("web-1")) // absent: empty manifest, version ""

	set := func(p manifest.PackageName) func(*manifest.Manifest, bool) error {
		return func(m *manifest.Manifest, _ bool) error {
			m.SetPackage(p)
			return nil
		}
	}
	if _, err := s.UpdateManifestAt(ctx, manifest.Server("web-1"), v, false, set(hello)); err != nil {
		panic(err)
	}
	_, err = s.UpdateManifestAt(ctx, manifest.Server("web-1"), v, false, set(api))
	fmt.Println(errors.Is(err, blobstore.ErrConflict))

	// UpdateManifest re-reads and retries, so both changes land.
	u, _ := s.UpdateManifest(ctx, manifest.Server("web-1"), set(api))
	fmt.Println(u.After.Revision, u.After.Apps())
	// Output:
	// true
	// 2 [hello api]
}
