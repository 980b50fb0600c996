package pkginstall

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
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
	if !errors.Is(r.Err, ErrNoSpace) || r.Downloaded != 0 || r.Step != StepDownloading {
		t.Fatalf("result %+v", r)
	}
	if ents, _ := os.ReadDir(eng.buildsDir("hello")); len(ents) != 0 {
		t.Fatalf("builds/ holds %v", ents)
	}
}
