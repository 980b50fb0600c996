package release

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
)

// file describes one entry of a test tree: a regular file (data, mode), a
// directory (dir) or a symbolic link (link).
type file struct {
	data string
	mode fs.FileMode
	link string
	dir  bool
}

// script is an executable deploy script.
var script = file{data: "#!/bin/sh\necho ok\n", mode: 0o755}

// makeTree writes files under a new temporary directory and returns it.
// Regular files default to mode 0644, directories to 0755.
func makeTree(t testing.TB, files map[string]file) string {
	t.Helper()
	root := t.TempDir()
	for name, f := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case f.dir:
			mode := f.mode
			if mode == 0 {
				mode = 0o755
			}
			if err := os.MkdirAll(p, mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
		case f.link != "":
			if err := os.Symlink(f.link, p); err != nil {
				t.Fatal(err)
			}
		default:
			mode := f.mode
			if mode == 0 {
				mode = 0o644
			}
			if err := os.WriteFile(p, []byte(f.data), mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, mode); err != nil { // past the umask
				t.Fatal(err)
			}
		}
	}
	return root
}

// fixedNow is the build time tests use.
var fixedNow = time.Date(2026, 11, 22, 10, 15, 0, 0, time.UTC)

// testConfig returns a Config releasing dir as app to bucket, with a fixed
// clock and a commit (so dir need not be a git repository).
func testConfig(bucket, app, dir string) Config {
	return Config{
		Bucket: bucket, App: app, Dir: dir,
		Commit: "0123456789abcdef0123456789abcdef01234567",
		User:   "alice", Host: "build-1",
		Now: func() time.Time { return fixedNow },
		Out: io.Discard,
	}
}

// member is one archive entry as read back.
type member struct {
	typ  byte
	mode int64
	data string
	link string
}

// readBack opens package name in store, checks that its bytes hash to its
// sha256 metadata, and returns its entries by name.
func readBack(t testing.TB, store *blobstore.Store, name manifest.PackageName) (blobstore.PackageInfo, map[string]member) {
	t.Helper()
	r, info, err := store.OpenPackage(t.Context(), name)
	if err != nil {
		t.Fatalf("OpenPackage: %v", err)
	}
	defer r.Close()
	raw, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if got := hex.EncodeToString(sum[:]); got != info.Meta.SHA256 {
		t.Fatalf("stored object hashes to %s, metadata says %s", got, info.Meta.SHA256)
	}
	if int64(len(raw)) != info.Size {
		t.Errorf("size %d, attributes say %d", len(raw), info.Size)
	}
	var dec io.Reader
	switch name.Format {
	case manifest.FormatZstd:
		zr, err := zstd.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		dec = zr
	case manifest.FormatGzip:
		gr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		dec = gr
	}
	tr := tar.NewReader(dec)
	members := map[string]member{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading archive: %v", err)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner %d:%d (%q:%q), want 0:0 and no names", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if !h.ModTime.Equal(info.Meta.Built) {
			t.Errorf("%s: mtime %v, want the build time %v", h.Name, h.ModTime, info.Meta.Built)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		members[h.Name] = member{typ: h.Typeflag, mode: h.Mode, data: string(data), link: h.Linkname}
	}
	return info, members
}

// unpackedSize is the bytes of regular-file contents of members, what
// release records as a package's unpacked size.
func unpackedSize(members map[string]member) int64 {
	var n int64
	for _, m := range members {
		if m.typ == '0' {
			n += int64(len(m.data))
		}
	}
	return n
}
