package unpack

import (
	"archive/tar"
	"errors"
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
		case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeDir:
		default:
			t.Fatalf("accepted type %q", typ)
		}
	})
}
