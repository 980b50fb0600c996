package blobstore_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
)

const (
	handV1 = `{"revision": 1, "packages": ["hello/hello-20261122T101500Z-0123456789ab.tar.zst"]}` + "\n"
	handV2 = `{"revision": 2, "packages": ["hello/hello-20261123T101500Z-0123456789ab.tar.zst"]}` + "\n"
)

// TestFileWrittenByHand: on every file:// variant, a manifest written by
// anything but pushpull (printf >, cp over an existing file, an editor's
// rename, with no sidecar or a stale one) is versioned by its content: it
// is read, its edits are seen by Changed, and a conditional write with the
// version read succeeds while one with an older version is refused.
func TestFileWrittenByHand(t *testing.T) {
	// How the second version reaches the file.
	edits := []struct {
		name string
		edit func(t *testing.T, path, data string)
	}{
		{"in place", func(t *testing.T, path, data string) { writeInPlace(t, path, data) }},
		{"rename", func(t *testing.T, path, data string) {
			tmp := path + ".swp"
			if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, b := range fileBackends() {
		t.Run(b.name, func(t *testing.T) {
			for _, e := range edits {
				for _, sidecar := range []bool{false, true} {
					name := e.name + "/no sidecar"
					if sidecar {
						name = e.name + "/stale sidecar"
					}
					t.Run(name, func(t *testing.T) { testByHand(t, b, sidecar, e.edit) })
				}
			}
		})
	}
}

func testByHand(t *testing.T, b backend, sidecar bool, edit func(t *testing.T, path, data string)) {
	s, ctx := b.open(t), t.Context()
	key, _ := blobstore.ManifestKey(manifest.Server("web1"))
	path := b.path(s, key)
	if sidecar {
		// pushpull wrote it first, so fileblob's sidecar holds an MD5 that
		// the hand edits below make stale.
		if _, err := s.Write(ctx, key, []byte(`{"packages": []}`), ""); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path + ".attrs"); err != nil {
			t.Fatalf("no sidecar beside a pushpull write: %v", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	writeInPlace(t, path, handV1) // printf > servers/web1.json

	m, v1, err := s.ReadManifest(ctx, manifest.Server("web1"))
	if err != nil || v1 == "" || m.Revision != 1 {
		t.Fatalf("ReadManifest of a hand-written manifest = rev %v, %q, %v", m, v1, err)
	}
	if changed, cur, err := s.ChangedManifest(ctx, manifest.Server("web1"), v1); err != nil || changed || cur != v1 {
		t.Fatalf("Changed without an edit = %v, %q, %v; want false, %q", changed, cur, err, v1)
	}

	time.Sleep(10 * time.Millisecond) // a later edit, as a person makes it
	edit(t, path, handV2)
	changed, cur, err := s.ChangedManifest(ctx, manifest.Server("web1"), v1)
	if err != nil || !changed || cur == v1 {
		t.Fatalf("Changed after a hand edit = %v, %q, %v; want true and a new version", changed, cur, err)
	}
	m, v2, err := s.ReadManifest(ctx, manifest.Server("web1"))
	if err != nil || m.Revision != 2 || v2 != cur {
		t.Fatalf("ReadManifest after the edit = %v, %q, %v; want revision 2 at %q", m, v2, err, cur)
	}
	// pushui's edit with the ETag it gave: the stale one is refused, the
	// current one is written.
	if _, err := blobstore.WriteManifest(s, ctx, manifest.Server("web1"), m.Clone(), v1); !errors.Is(err, blobstore.ErrConflict) {
		t.Fatalf("write with the version before the hand edit: %v, want ErrConflict", err)
	}
	v3, err := blobstore.WriteManifest(s, ctx, manifest.Server("web1"), m.Clone(), v2)
	if err != nil {
		t.Fatalf("write with the current version: %v", err)
	}
	if _, got, _ := s.ReadManifest(ctx, manifest.Server("web1")); got != v3 {
		t.Fatalf("version after the write = %q, want the write's %q", got, v3)
	}
	// And a hand edit after pushpull's write, beside the sidecar it left.
	time.Sleep(10 * time.Millisecond)
	edit(t, path, handV1)
	if changed, _, err := s.ChangedManifest(ctx, manifest.Server("web1"), v3); err != nil || !changed {
		t.Fatalf("hand edit after a pushpull write not seen: %v, %v", changed, err)
	}
	if m, _, err := s.ReadManifest(ctx, manifest.Server("web1")); err != nil || m.Revision != 1 {
		t.Fatalf("ReadManifest = %v, %v; want the hand-written revision 1", m, err)
	}
}

// writeInPlace truncates and rewrites path, as the shell's > and cp over an
// existing file do (same inode).
func writeInPlace(t *testing.T, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestMissingDirectoryError: Open's error for a missing file:// directory
// is one line naming the bucket URL as given and the directory, and wraps
// ErrNotFound.
func TestMissingDirectoryError(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "typo")
	for _, tc := range []struct{ name, url string }{
		{"plain", "file://" + dir},
		{"with a prefix", "file://" + dir + "?prefix=team-a/"},
		{"localhost", "file://localhost" + dir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := blobstore.Open(t.Context(), tc.url)
			if !errors.Is(err, blobstore.ErrNotFound) {
				t.Fatalf("Open = %v, want ErrNotFound", err)
			}
			if want := "bucket " + tc.url + ": directory " + dir + " does not exist"; err.Error() != want {
				t.Errorf("Open = %q\nwant %q", err, want)
			}
		})
	}
}

// TestOpenMissingDirectory: a file:// URL naming a directory that does not
// exist is refused by Open (a typo is not a new bucket) and made by Create.
func TestOpenMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "typo")
	if _, err := blobstore.Open(t.Context(), "file://"+dir); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Open of a missing directory: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open created the directory: %v", err)
	}
	s, created, err := blobstore.Create(t.Context(), "file://"+dir)
	if err != nil || !created {
		t.Fatalf("Create = %v, %v; want created", created, err)
	}
	s.Close()
	s, created, err = blobstore.Create(t.Context(), "file://"+dir)
	if err != nil || created {
		t.Fatalf("second Create = %v, %v; want an existing directory", created, err)
	}
	s.Close()
	file := filepath.Join(dir, "plain")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := blobstore.Open(t.Context(), "file://"+file); err == nil {
		t.Fatal("Open of a plain file succeeded")
	}
}
