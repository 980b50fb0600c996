package pkginstall

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkgformat"
)

// TestNoSpace checks that a package larger than the free space is refused
// before anything is downloaded.
func TestNoSpace(t *testing.T) {
	store, err := blobstore.Open(t.Context(), "mem://")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	name, _ := manifest.NewPackageName("hello", time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), "0123456789ab", false, manifest.FormatZstd)
	pw, err := store.NewPackageWriter(t.Context(), name, manifest.PackageMeta{App: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	pw.Write(make([]byte, 1000)) // never unpacked: refused before the download
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	old := freeSpace
	defer func() { freeSpace = old }()
	freeSpace = func(string) (int64, error) { return 999, nil }

	root := t.TempDir()
	eng, err := Open(root, Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	r := eng.Apply(t.Context(), manifest.Entry{Package: name})
	if !errors.Is(r.Err, ErrNoSpace) || r.Downloaded != 0 || r.Step != manifest.StepDownloading {
		t.Fatalf("result %+v", r)
	}
	if ents, _ := os.ReadDir(eng.buildsDir("hello")); len(ents) != 0 {
		t.Fatalf("builds/ holds %v", ents)
	}
}

// releaseSized stores files as package seq of hello with metadata
// recording size bytes unpacked (0: none recorded, as before release
// recorded it).
func releaseSized(t *testing.T, store *blobstore.Store, seq int, files map[string]string, size int64) manifest.PackageName {
	t.Helper()
	name := deploytest.Name(t, "hello", seq, manifest.FormatZstd)
	meta := deploytest.Meta(name)
	meta.Size = size
	pw, err := store.NewPackageWriter(t.Context(), name, meta)
	if err != nil {
		t.Fatal(err)
	}
	pw.Write(deploytest.Pack(t, manifest.FormatZstd, deploytest.Entries(files)))
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestUnpackedSize: the free-space check uses the unpacked size release
// recorded, not the compressed size (a small archive of zeros must not fill
// the disk), and an archive that unpacks to more than recorded stops with
// an error saying so; a package without a recorded size still installs.
func TestUnpackedSize(t *testing.T) {
	store, err := blobstore.Open(t.Context(), "mem://")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	zeros := map[string]string{"zeros": strings.Repeat("\x00", 1<<20)}
	bomb := releaseSized(t, store, 1, zeros, 1<<20)
	liar := releaseSized(t, store, 2, zeros, 1000)
	old := releaseSized(t, store, 3, zeros, 0)

	prev := freeSpace
	defer func() { freeSpace = prev }()
	freeSpace = func(string) (int64, error) { return 512 << 10, nil } // more than any archive here, less than it unpacks to
	eng, err := Open(t.TempDir(), Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	r := eng.Apply(t.Context(), manifest.Entry{Package: bomb})
	if !errors.Is(r.Err, ErrNoSpace) || r.Downloaded != 0 || !strings.Contains(r.Err.Error(), "unpacks to 1048576 bytes") {
		t.Fatalf("1 MiB unpacked with 512 KiB free: %+v", r)
	}
	freeSpace = prev
	r = eng.Apply(t.Context(), manifest.Entry{Package: liar})
	if !errors.Is(r.Err, pkgformat.ErrTooLarge) || !strings.Contains(r.Err.Error(), "metadata records 1000 bytes unpacked") {
		t.Fatalf("archive unpacking to more than recorded: %+v", r)
	}
	if ents, _ := os.ReadDir(eng.buildsDir("hello")); len(ents) != 0 {
		t.Fatalf("builds/ holds %v after a refused package", ents)
	}
	if r := eng.Apply(t.Context(), manifest.Entry{Package: old}); r.Err != nil {
		t.Fatalf("package without a recorded size: %v", r.Err)
	}
}
