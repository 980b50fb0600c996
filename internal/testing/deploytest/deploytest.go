// Package deploytest has what the tests of pkginstall and pulld share: real
// deploy packages (a tar.zst or tar.gz of files with Teletraan scripts under
// teletraan/) written into a real bucket with the metadata and sha256
// release would give them, an HTTP proxy in front of a bucket server that
// counts requests and bytes and can be switched to answer 500, and
// Unprivileged, which runs a test as a user whom permission bits bind even
// when the tests run as root (with RemovableTree to clean up what such a
// test leaves read-only).
//
// A package is built in steps that a test can stop between, to tamper with
// one: Entries turns files into tar entries, Pack compresses them, Name
// names app's package number seq, and Release writes the bytes under that
// name. Build does all four. Package names, commits and times depend only
// on app and seq, so tests can state them.
package deploytest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkgformat"
)

// MTime is the modification time of every entry Entries returns.
var MTime = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

// Entry is one tar entry of a test package: its header and, for a regular
// file, its contents (the header's Size must match).
type Entry struct {
	Header tar.Header
	Body   []byte
}

// Entries returns files (slash-separated path → contents) as tar entries:
// first a directory entry, mode 0755, for every directory holding a file,
// then the files, each group sorted by name, all with modification time
// MTime. A file is executable (0755) when it starts with "#!", or when it
// lies under teletraan/ and is neither a template (".tmpl") nor a FAIL_
// marker; any other file is 0644.
func Entries(files map[string]string) []Entry {
	paths := slices.Sorted(maps.Keys(files))
	dirs := map[string]bool{}
	for _, p := range paths {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	out := make([]Entry, 0, len(dirs)+len(paths))
	for _, d := range slices.Sorted(maps.Keys(dirs)) {
		out = append(out, Entry{Header: tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: MTime}})
	}
	for _, p := range paths {
		mode := int64(0o644)
		script := strings.HasPrefix(p, pkgformat.ScriptDir+"/") && !strings.HasSuffix(p, pkgformat.TemplateSuffix) && !strings.HasPrefix(path.Base(p), "FAIL_")
		if script || strings.HasPrefix(files[p], "#!") {
			mode = 0o755
		}
		out = append(out, Entry{
			Header: tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Size: int64(len(files[p])), ModTime: MTime},
			Body:   []byte(files[p]),
		})
	}
	return out
}

// Pack returns entries, headers as given, as a tar stream compressed in
// format (manifest.FormatZstd or manifest.FormatGzip). It fails t on an
// unknown format or a header the tar writer refuses.
func Pack(t testing.TB, format manifest.Format, entries []Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	var zw io.WriteCloser
	switch format {
	case manifest.FormatZstd:
		w, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		zw = w
	case manifest.FormatGzip:
		zw = gzip.NewWriter(&buf)
	default:
		t.Fatalf("deploytest: unknown archive format %q", format)
	}
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := e.Header
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("deploytest: entry %q: %v", h.Name, err)
		}
		if _, err := tw.Write(e.Body); err != nil {
			t.Fatalf("deploytest: entry %q: %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Name returns the name of app's package number seq in format: built seq
// minutes after 2026-11-22T10:00Z from commit abc000000000 plus seq (12 hex
// digits), so seq 1 of hello as tar.zst is
// hello/hello-20261122T100100Z-abc000000001.tar.zst. A later seq is a newer
// build.
func Name(t testing.TB, app string, seq int, format manifest.Format) manifest.PackageName {
	t.Helper()
	built := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Minute)
	name, err := manifest.NewPackageName(app, built, fmt.Sprintf("%012x", 0xabc000000000+seq), false, format)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// Meta returns the metadata Release writes with name, its sha256 aside: the
// app, format and build time of the name, the name's commit followed by
// "0000" (what scripts see as BUILD_COMMIT), branch main and repo
// https://example.com/{app}.
func Meta(name manifest.PackageName) manifest.PackageMeta {
	return manifest.PackageMeta{
		App: name.App, Commit: name.Commit + "0000", Branch: "main", Repo: "https://example.com/" + name.App,
		Built: name.Built, User: "test", Host: "test", Format: name.Format,
	}
}

// Release writes data into store as package name, with Meta(name), through
// a blobstore.PackageWriter, which computes and seals the sha256.
func Release(t testing.TB, store *blobstore.Store, name manifest.PackageName, data []byte) {
	t.Helper()
	pw, err := store.NewPackageWriter(t.Context(), name, Meta(name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pw.Write(data); err != nil {
		pw.Abort()
		t.Fatal(err)
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
}

// Build releases files (see Entries) into store as app's package number
// seq (see Name), as tar.zst, and returns the package's name.
func Build(t testing.TB, store *blobstore.Store, app string, seq int, files map[string]string) manifest.PackageName {
	t.Helper()
	name := Name(t, app, seq, manifest.FormatZstd)
	Release(t, store, name, Pack(t, manifest.FormatZstd, Entries(files)))
	return name
}

// SHA256 returns the hex sha256 of data, as package metadata records it.
func SHA256(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}
