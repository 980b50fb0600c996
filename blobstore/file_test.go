package blobstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pushpull/pushpull/manifest"
)

// TestLocalPath checks which keys take the file:// package path: exactly
// those whose file name fileblob does not escape, so that both agree on
// where an object lives.
func TestLocalPath(t *testing.T) {
	for _, tc := range []struct {
		prefix, key string
		want        string // "" when the portable path must be used
	}{
		{"", "packages/hello/hello-20261122T101500Z-0123456789ab.tar.zst", "packages/hello/hello-20261122T101500Z-0123456789ab.tar.zst"},
		{"team-a/", "uploads/x.claim", "team-a/uploads/x.claim"},
		{"team a/", "uploads/x", ""},
		{"", "a//b", ""},
		{"", "a/../b", ""},
		{"", "a../b", ""},
		{"", "a/./b", ""},
		{"", "a/", ""},
		{"/abs/", "a", ""},
		{"", "a.attrs", ""},
		{"", "tab\tkey", ""},
		{"", "ünicode", ""},
		{"", "", ""},
	} {
		t.Run(tc.prefix+tc.key, func(t *testing.T) {
			d := &fileDriver{dir: "/bucket", prefix: tc.prefix}
			got, ok := d.localPath(tc.key)
			if tc.want == "" {
				if ok {
					t.Fatalf("localPath(%q) = %q, want the portable path", tc.prefix+tc.key, got)
				}
				return
			}
			if want := filepath.Join("/bucket", tc.want); !ok || got != want {
				t.Fatalf("localPath(%q) = %q, %v; want %q", tc.prefix+tc.key, got, ok, want)
			}
		})
	}
}

// TestSealLocalKeepsExisting: when a file appears under the package's key
// after the writer's check (a writer outside pushpull's lock), sealing fails
// with ErrConflict and leaves that file and its sidecar as they were.
func TestSealLocalKeepsExisting(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(t.Context(), "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	name, err := manifest.ParsePackageName("hello/hello-20261122T101500Z-0123456789ab.tar.zst")
	if err != nil {
		t.Fatal(err)
	}
	pw, err := s.NewPackageWriter(t.Context(), name, manifest.PackageMeta{App: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pw.Write([]byte("ours")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, filepath.FromSlash(PackageKey(name)))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + attrsSuffix} {
		if err := os.WriteFile(f, []byte("theirs"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := pw.Close(); !errors.Is(err, ErrConflict) {
		t.Fatalf("Close over an existing file: %v, want ErrConflict", err)
	}
	for _, f := range []string{path, path + attrsSuffix} {
		if got, _ := os.ReadFile(f); !bytes.Equal(got, []byte("theirs")) {
			t.Errorf("%s = %q after the failed seal, want it untouched", filepath.Base(f), got)
		}
	}
	_ = filepath.WalkDir(filepath.Join(dir, "uploads"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("staging file left behind: %s", p)
		}
		return nil
	})
}

// TestFileStatReadsOnlyWhenStamped: Changed on an unchanged file answers
// from the stat stamp without reading the file (proved by planting a
// Version no read could produce), and reads it again once a write changes
// the stamp.
func TestFileStatReadsOnlyWhenStamped(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(t.Context(), "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	path := filepath.Join(dir, "servers", "web1.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"packages": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	_, v, err := s.Changed(ctx, "servers/web1.json", "")
	if err != nil || v != contentVersion([]byte(`{"packages": []}`)) {
		t.Fatalf("first Changed = %q, %v", v, err)
	}
	d := s.d.(*fileDriver)
	d.stamps["servers/web1.json"] = fileStamp{stamp: d.stamps["servers/web1.json"].stamp, version: "planted"}
	if _, v, err := s.Changed(ctx, "servers/web1.json", ""); err != nil || v != "planted" {
		t.Fatalf("Changed of an unchanged file = %q, %v; want the remembered version, no read", v, err)
	}
	if err := os.WriteFile(path, []byte(`{"packages": [ ]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, v, err := s.Changed(ctx, "servers/web1.json", ""); err != nil || v != contentVersion([]byte(`{"packages": [ ]}`)) {
		t.Fatalf("Changed after a write = %q, %v; want the new content's version", v, err)
	}
}

// TestFileListingWhileFilesComeAndGo: an editor's swap file or another
// writer's temporary file that vanishes while fileblob walks the directory
// does not fail the listing (fileblob reports it as not found), even with
// a thousand such files a second.
func TestFileListingWhileFilesComeAndGo(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(t.Context(), "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st := &manifest.Status{Server: "web-1"}
	if err := s.WriteStatus(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	churned := make(chan struct{})
	go func() {
		defer close(churned)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			p := filepath.Join(dir, "status", fmt.Sprintf(".swp%d", i%50))
			os.WriteFile(p, nil, 0o644)
			os.Remove(p)
			time.Sleep(time.Millisecond) // a thousand writes a second
		}
	}()
	defer func() { close(done); <-churned }()
	for range 300 {
		got, err := s.ListStatuses(t.Context())
		if err != nil {
			t.Fatalf("listing while files come and go: %v", err)
		}
		if len(got) != 1 || got[0].Name != "web-1" {
			t.Fatalf("listing = %v, want web-1 alone", got)
		}
	}
}
