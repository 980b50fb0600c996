package pkgformat_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"

	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkgformat"
)

// tarZst builds a small package in memory, as release would.
func tarZst(hdrs []*tar.Header, bodies []string) []byte {
	var b bytes.Buffer
	zw, _ := zstd.NewWriter(&b)
	tw := tar.NewWriter(zw)
	for i, h := range hdrs {
		h.Size = int64(len(bodies[i]))
		tw.WriteHeader(h)
		tw.Write([]byte(bodies[i]))
	}
	tw.Close()
	zw.Close()
	return b.Bytes()
}

func ExampleExtract() {
	pkg := tarZst([]*tar.Header{
		{Name: "teletraan/RESTARTING", Typeflag: tar.TypeReg, Mode: 0o755},
		{Name: "bin/hello", Typeflag: tar.TypeReg, Mode: 0o755},
	}, []string{"#!/bin/sh\nexec ./bin/hello\n", "hello"})

	dir, err := os.MkdirTemp("", "build")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	st, err := pkgformat.Extract(bytes.NewReader(pkg), manifest.FormatZstd, dir, pkgformat.Limits{})
	if err != nil {
		log.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(dir, "teletraan", "RESTARTING"))
	fmt.Printf("%d files, %d dirs, %d bytes; RESTARTING is %v\n", st.Files, st.Dirs, st.Bytes, fi.Mode())

	// A hostile package is refused.
	evil := tarZst([]*tar.Header{{Name: "../../etc/cron.d/x", Typeflag: tar.TypeReg, Mode: 0o644}}, []string{"* * * * * root sh"})
	dir2, _ := os.MkdirTemp("", "build")
	defer os.RemoveAll(dir2)
	_, err = pkgformat.Extract(bytes.NewReader(evil), manifest.FormatZstd, dir2, pkgformat.Limits{})
	fmt.Println(errors.Is(err, pkgformat.ErrUnsafe), err)
	// Output:
	// 2 files, 2 dirs, 32 bytes; RESTARTING is -rwxr-xr-x
	// true unpack: entry "../../etc/cron.d/x": unsafe archive entry: path escapes the build
}

func ExampleCheckEntry() {
	for _, h := range []*tar.Header{
		{Name: "bin/app", Typeflag: tar.TypeReg},
		{Name: "lib/current", Typeflag: tar.TypeSymlink, Linkname: "../../lib-1.2"},
		{Name: "etc", Typeflag: tar.TypeSymlink, Linkname: "/etc"},
		{Name: "dev/null", Typeflag: tar.TypeChar},
	} {
		fmt.Println(h.Name, pkgformat.CheckEntry(h))
	}
	// Output:
	// bin/app <nil>
	// lib/current unpack: entry "lib/current": unsafe archive entry: symlink target "../../lib-1.2" is outside the build
	// etc unpack: entry "etc": unsafe archive entry: symlink to absolute path "/etc"
	// dev/null unpack: entry "dev/null": unsafe archive entry: device node
}
