package pkginstall_test

import (
	"archive/tar"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkginstall"
)

// Example releases a package with one deploy script into a mem:// bucket,
// deploys it, then deploys it again with another config value, which
// restarts it.
func Example() {
	ctx := context.Background()
	store, err := blobstore.Open(ctx, "mem://")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// Release hello: a RESTARTING script that shows what it was told.
	name, _ := manifest.NewPackageName("hello", time.Date(2026, 11, 22, 10, 15, 0, 0, time.UTC), "0123456789ab", false, manifest.FormatZstd)
	pw, err := store.NewPackageWriter(ctx, name, manifest.PackageMeta{App: "hello", Commit: "0123456789ab"})
	if err != nil {
		log.Fatal(err)
	}
	zw, _ := zstd.NewWriter(pw)
	tw := tar.NewWriter(zw)
	script := "#!/bin/sh\necho \"$DEPLOY_STEP $OPCODE greeting=$GREETING\" >> \"$OUT\"\n"
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "teletraan/", Mode: 0o755})
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "teletraan/RESTARTING", Mode: 0o755, Size: int64(len(script))})
	tw.Write([]byte(script))
	tw.Close()
	zw.Close()
	if err := pw.Close(); err != nil {
		log.Fatal(err)
	}

	root, _ := os.MkdirTemp("", "pkginstall-example")
	defer os.RemoveAll(root)
	out := filepath.Join(root, "out.txt")
	eng, err := pkginstall.Open(filepath.Join(root, "host"), pkginstall.Config{Store: store, Server: "web-1"})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()

	for _, greeting := range []string{"hello", "bonjour", "bonjour"} {
		entry := manifest.Entry{Package: name, Config: map[string]string{"GREETING": greeting, "OUT": out}}
		r := eng.Apply(ctx, entry)
		fmt.Printf("%s: %s, %s, serving %s\n", r.Action, r.What, r.State, r.Serving)
	}
	data, _ := os.ReadFile(out)
	fmt.Print(string(data))
	// Output:
	// deploy: deployed, SERVING_BUILD, serving hello/hello-20261122T101500Z-0123456789ab.tar.zst
	// restart: restarted, SERVING_BUILD, serving hello/hello-20261122T101500Z-0123456789ab.tar.zst
	// none: unchanged, SERVING_BUILD, serving hello/hello-20261122T101500Z-0123456789ab.tar.zst
	// RESTARTING DEPLOY greeting=hello
	// RESTARTING RESTART greeting=bonjour
}
