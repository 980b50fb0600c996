package release_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/pushpull/pushpull/internal/release"
)

// Example releases a small build directory into a file:// bucket and lists
// the app's packages. The command-line equivalent is
//
//	release -bucket file:///tmp/bucket -create -app hello -dir build -commit 0123456789abcdef -note "first release"
//	release -list -bucket file:///tmp/bucket -app hello
func Example() {
	tmp, err := os.MkdirTemp("", "release-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	build := filepath.Join(tmp, "build")
	if err := os.MkdirAll(filepath.Join(build, "teletraan"), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(build, "teletraan", "RESTARTING"), []byte("#!/bin/sh\nexec ./hello\n"), 0o755); err != nil {
		log.Fatal(err)
	}

	cfg := release.Config{
		Bucket: "file://" + filepath.Join(tmp, "bucket"),
		Create: true, // a new bucket directory
		App:    "hello",
		Dir:    build,
		Commit: "0123456789abcdef", // build is not a git repository
		Note:   "first release",
		User:   "alice",
		Now:    func() time.Time { return time.Date(2026, 11, 22, 10, 15, 0, 0, time.UTC) },
		Out:    os.Stdout, // the package name
	}
	res, err := release.Run(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Meta.Commit, res.Meta.User, res.Meta.Dirty, len(res.Meta.SHA256))

	cfg.List = true
	cfg.Create, cfg.Commit, cfg.Note = false, "", ""
	if _, err := release.Run(context.Background(), cfg); err != nil {
		log.Fatal(err)
	}
	// Output:
	// hello/hello-20261122T101500Z-0123456789ab.tar.zst
	// 0123456789abcdef alice false 64
	// PACKAGE                                            BUILT                COMMIT        USER   DIRTY  NOTE
	// hello/hello-20261122T101500Z-0123456789ab.tar.zst  2026-11-22 10:15:00  0123456789ab  alice  -      first release
}
