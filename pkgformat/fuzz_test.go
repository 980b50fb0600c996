package pkgformat

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// inside reports whether p, joined to dir and cleaned, stays inside dir.
func inside(dir, p string) bool {
	j := filepath.Join(dir, p)
	return j == dir || strings.HasPrefix(j, dir+string(filepath.Separator))
}

// FuzzCheckEntry checks CheckEntry's contract: it never panics, every
// refusal wraps ErrUnsafe, and an accepted entry's name (and a link's
// target) joined to the destination and cleaned stays inside it.
func FuzzCheckEntry(f *testing.F) {
	for _, s := range []struct {
		name string
		typ  byte
		link string
	}{
		{"a/b/c", tar.TypeReg, ""},
		{"../evil", tar.TypeReg, ""},
		{"/etc/x", tar.TypeReg, ""},
		{"a/../../x", tar.TypeReg, ""},
		{"./", tar.TypeDir, ""},
		{"link", tar.TypeSymlink, "/"},
		{"sub", tar.TypeSymlink, ".."},
		{"a/b", tar.TypeSymlink, "../c"},
		{"pw", tar.TypeLink, "/etc/passwd"},
		{"pw", tar.TypeLink, "a/../b"},
		{"null", tar.TypeChar, ""},
		{"pipe", tar.TypeFifo, ""},
		{"..foo/..", tar.TypeDir, ""},
		{"a//b/./c/", tar.TypeDir, ""},
	} {
		f.Add(s.name, s.typ, s.link)
	}
	const dir = "/dst/build"
	f.Fuzz(func(t *testing.T, name string, typ byte, link string) {
		h := &tar.Header{Name: name, Typeflag: typ, Linkname: link}
		err := CheckEntry(h)
		if err != nil {
			if !errors.Is(err, ErrUnsafe) {
				t.Fatalf("CheckEntry(%q, %q, %q) = %v, not ErrUnsafe", name, typ, link, err)
			}
			return
		}
		if typ == tar.TypeXGlobalHeader {
			return // never extracted
		}
		if !inside(dir, name) || !inside(dir, cleanName(name)) {
			t.Fatalf("accepted %q, which leaves %s", name, dir)
		}
		switch typ {
		case tar.TypeSymlink:
			if !inside(dir, filepath.Join(filepath.Dir(cleanName(name)), link)) {
				t.Fatalf("accepted symlink %q -> %q, which points outside %s", name, link, dir)
			}
		case tar.TypeLink:
			if !inside(dir, link) {
				t.Fatalf("accepted hard link %q -> %q, outside %s", name, link, dir)
			}
		case tar.TypeReg, tar.TypeGNUSparse, tar.TypeDir:
		default:
			t.Fatalf("accepted type %q", typ)
		}
	})
}

// FuzzExtract extracts arbitrary tar streams (uncompressed, to spend the
// time on tar rather than on the compressor) into a directory inside an
// otherwise empty parent, and checks that nothing appears beside it, that
// every symlink left behind that resolves at all resolves inside it, and
// that no device, FIFO or setuid file was created.
func FuzzExtract(f *testing.F) {
	for _, ents := range [][]ent{
		{file("a/b", 0o644, "x"), dir("a/", 0o555), symlink("a/l", "b"), hardlink("h", "a/b")},
		{symlink("link", "/"), file("link/etc/x", 0o644, "x")},
		{symlink("sub", ".."), file("sub/x", 0o644, "x")},
		{symlink("d", "."), symlink("e", "d/..")},
		{dir("x/", 0o755), symlink("e", "x/d/../.."), symlink("x/d", "..")},
		{hardlink("pw", "/etc/passwd")},
		{file("../evil", 0o644, "x")},
		{file("s", 0o4755, "x")},
	} {
		f.Add(tarball(f, ents...))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		parent := t.TempDir()
		dst := filepath.Join(parent, "build")
		if err := os.Mkdir(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		root, err := os.OpenRoot(dst)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		x := newExtractor(root, "tar", Limits{MaxBytes: 1 << 20, MaxEntries: 100})
		x.run(tar.NewReader(bytes.NewReader(raw)))

		// Let the temp dir be removed whatever modes the archive set.
		defer filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
		if names, _ := os.ReadDir(parent); len(names) != 1 {
			t.Fatalf("parent holds %d entries, want only build", len(names))
		}
		realDst, _ := filepath.EvalSymlinks(dst)
		filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return nil
			}
			switch m := fi.Mode(); {
			case m&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0:
				t.Fatalf("%s: special file %v", p, m)
			case m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0:
				t.Fatalf("%s: mode %v", p, m)
			case m&fs.ModeSymlink != 0:
				r, err := filepath.EvalSymlinks(p)
				if err == nil && !inside(realDst, r) {
					t.Fatalf("%s resolves to %s, outside %s", p, r, realDst)
				}
			}
			return nil
		})
	})
}
