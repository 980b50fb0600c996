package pkgformat_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkgformat"
)

// writeTree writes files (path → content; a trailing "*" on the path
// makes the file executable, a trailing "@" a symlink to the content)
// under a new directory and returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		mode := os.FileMode(0o644)
		link := false
		switch {
		case strings.HasSuffix(name, "*"):
			name, mode = strings.TrimSuffix(name, "*"), 0o755
		case strings.HasSuffix(name, "@"):
			name, link = strings.TrimSuffix(name, "@"), true
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if link {
			err = os.Symlink(content, p)
		} else {
			err = os.WriteFile(p, []byte(content), mode)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// dpkgDeb runs the real dpkg-deb with args and returns its output.
func dpkgDeb(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestWriteDeb builds a .deb from a tree and reads it back with the real
// dpkg-deb: the control fields (Version from the build time, fields from
// debian/control), the maintainer scripts, the conffiles, and the data,
// installed at the tree's paths without debian/, with modes that no one
// but root can write.
func TestWriteDeb(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"opt/hello/bin/hello*":         "#!/bin/sh\necho hello\n",
		"opt/hello/share/readme":       "hi\n",
		"opt/hello/current@":           "bin",
		"etc/hello/hello.conf":         "port=8080\n",
		"debian/postinst*":             "#!/bin/sh\necho configured\n",
		"debian/prerm*":                "#!/bin/sh\nexit 0\n",
		"lib/systemd/system/x.service": "[Service]\n",
		"debian/control": "Package: pushpull-hello\nDepends: libc6 (>= 2.17),\n coreutils\n" +
			"Description: the hello app\n greets people\n .\n politely\nArchitecture: amd64\n",
	})
	if err := os.Chmod(filepath.Join(dir, "opt/hello/share/readme"), 0o666); err != nil {
		t.Fatal(err)
	}
	tree, err := pkgformat.WalkTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	built := time.Date(2026, 12, 1, 18, 22, 0, 0, time.UTC)
	p, err := manifest.NewPackageName("hello", built, "7e0ff6059e653eb75a36efb621d0fd66d1ced433", false, manifest.FormatDeb)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tree.WriteDeb(t.Context(), &buf, p, manifest.PackageMeta{User: "alice", Host: "ci", Built: built}, nil); err != nil {
		t.Fatal(err)
	}
	deb := filepath.Join(t.TempDir(), "hello.deb")
	if err := os.WriteFile(deb, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for field, want := range map[string]string{
		"Package":      "pushpull-hello",
		"Version":      "20261201.182200+7e0ff6059e65",
		"Architecture": "amd64",
		"Maintainer":   "alice@ci",
		"Depends":      "libc6 (>= 2.17), coreutils",
		"Description":  "the hello app\n greets people\n .\n politely",
	} {
		if got := strings.TrimSpace(dpkgDeb(t, "--field", deb, field)); got != want {
			t.Errorf("%s = %q, want %q", field, got, want)
		}
	}
	ctrl := t.TempDir()
	dpkgDeb(t, "--control", deb, ctrl)
	for _, s := range []string{"postinst", "prerm"} {
		if fi, err := os.Stat(filepath.Join(ctrl, s)); err != nil || fi.Mode().Perm()&0o100 == 0 {
			t.Errorf("maintainer script %s: %v", s, err)
		}
	}
	if _, err := os.Stat(filepath.Join(ctrl, "preinst")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("preinst, which the tree lacks: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(ctrl, "conffiles")); strings.TrimSpace(string(b)) != "/etc/hello/hello.conf" {
		t.Errorf("conffiles %q, want the files under etc/", b)
	}
	listing := dpkgDeb(t, "--contents", deb)
	for _, want := range []string{
		"-rwxr-xr-x root/root", "./opt/hello/bin/hello",
		"-rw-r--r-- root/root", "./opt/hello/share/readme", // 0666 in the tree
		"./opt/hello/current -> bin",
		"./lib/systemd/system/x.service",
	} {
		if !strings.Contains(listing, want) {
			t.Errorf("contents lack %q:\n%s", want, listing)
		}
	}
	if strings.Contains(listing, "debian") || strings.Contains(listing, "rw-rw-rw") {
		t.Errorf("contents install debian/ or a world-writable file:\n%s", listing)
	}
}

// TestDebVersionsSort checks with dpkg itself that versions order as build
// times do.
func TestDebVersionsSort(t *testing.T) {
	name := func(built time.Time, commit string, dirty bool) manifest.PackageName {
		p, err := manifest.NewPackageName("hello", built, commit, dirty, manifest.FormatDeb)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	older := []manifest.PackageName{
		name(t0, "ffffffffffff", false),
		name(t0.Add(time.Second), "000000000000", true),
		name(t0.Add(time.Hour), "000000000000", false),
		name(t0.AddDate(1, 0, 0), "000000000000", false),
	}
	for i := 1; i < len(older); i++ {
		a, b := pkgformat.DebVersion(older[i-1]), pkgformat.DebVersion(older[i])
		if err := exec.Command("dpkg", "--compare-versions", a, "lt", b).Run(); err != nil {
			t.Errorf("dpkg does not order %s before %s: %v", a, b, err)
		}
	}
}

// TestCheckDeb lists what a tree meant as a .deb may not hold.
func TestCheckDeb(t *testing.T) {
	for _, tc := range []struct {
		name  string
		app   string
		files map[string]string
		want  string // in the error; "" for none
	}{
		{"plain", "hello", map[string]string{"opt/hello/x": "x"}, ""},
		{"teletraan scripts", "hello", map[string]string{"teletraan/RESTARTING*": "#!/bin/sh\n"}, "maintainer scripts under debian/"},
		{"script not executable", "hello", map[string]string{"debian/postinst": "#!/bin/sh\n"}, "debian/postinst: a maintainer script must be an executable file"},
		{"unknown file", "hello", map[string]string{"debian/rules*": "x"}, "debian/rules: unknown file in debian/"},
		{"bad control", "hello", map[string]string{"debian/control": "Version: 1.0\n"}, "Version is set by release"},
		{"app not a Debian name", "Hello", map[string]string{"x": "x"}, "not a Debian package name"},
		{"named in control", "my_app", map[string]string{"debian/control": "Package: my-app\n"}, ""},
		{"underscore becomes hyphen", "my_app", map[string]string{"x": "x"}, ""},
		{"dpkg-deb's DEBIAN", "hello", map[string]string{"DEBIAN/control": "Package: x\n"}, "DEBIAN/: dpkg-deb's control directory"},
		{"newline in a path", "hello", map[string]string{"opt/a\nb": "x"}, "control character in a path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree, err := pkgformat.WalkTree(writeTree(t, tc.files))
			if err != nil {
				t.Fatal(err)
			}
			err = tree.CheckDeb(tc.app)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("CheckDeb = %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, pkgformat.ErrInvalidTree)):
				t.Errorf("CheckDeb = %v, want ErrInvalidTree mentioning %q", err, tc.want)
			}
		})
	}
}

// TestParseControl covers the control file's syntax and its refusals.
func TestParseControl(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     pkgformat.DebControl
		err      string
	}{
		{name: "fields", in: "package: web\nPre-Depends: a\nDepends: b (>= 1) | c, d\n\nProvides: x\n# comment\nSection: net\n",
			want: pkgformat.DebControl{Package: "web", PreDepends: []string{"a"}, Depends: []string{"b (>= 1) | c", "d"}, Provides: []string{"x"}, Section: "net"}},
		{name: "multi-line description", in: "Description: short\n long one\n .\n more\n",
			want: pkgformat.DebControl{Description: "short\nlong one\n\nmore"}},
		{name: "continued list", in: "Depends: a,\n b,\n\tc\n", want: pkgformat.DebControl{Depends: []string{"a", "b", "c"}}},
		{name: "version", in: "Version: 2\n", err: "Version is set by release"},
		{name: "unknown", in: "Essential: yes\n", err: `unknown field "Essential"`},
		{name: "twice", in: "Section: a\nsection: b\n", err: "given twice"},
		{name: "no colon", in: "Package web\n", err: "want \"Field: value\""},
		{name: "leading continuation", in: " x\n", err: "continuation line before any field"},
		{name: "bad package", in: "Package: Web_1\n", err: "not a Debian package name"},
		{name: "multi-line package", in: "Package: web\n more\n", err: "not a Debian package name"},
		{name: "multi-line section", in: "Section: a\n b\n", err: "spans lines"},
		{name: "control character", in: "Section: a\x01b\n", err: "control character"},
		{name: "too long", in: "Description: " + strings.Repeat("x", 70<<10) + "\n", err: "longer than 64 KiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pkgformat.ParseControl([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !errors.Is(err, pkgformat.ErrInvalidControl) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseControl = %+v, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Package != tc.want.Package || got.Description != tc.want.Description || got.Section != tc.want.Section ||
				!slices.Equal(got.Depends, tc.want.Depends) || !slices.Equal(got.PreDepends, tc.want.PreDepends) || !slices.Equal(got.Provides, tc.want.Provides) {
				t.Errorf("ParseControl = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// FuzzParseControl checks ParseControl's contract: it never panics, every
// refusal wraps ErrInvalidControl, and what it accepts has a valid or empty
// Package and no line break but in Description.
func FuzzParseControl(f *testing.F) {
	for _, s := range []string{
		"Package: web\nDepends: a, b\n",
		"Description: x\n y\n .\n",
		"Version: 1\n",
		" x\n",
		"Package: A\n",
		"depends: a,\n b\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := pkgformat.ParseControl(data)
		if err != nil {
			if !errors.Is(err, pkgformat.ErrInvalidControl) {
				t.Fatalf("error %v does not wrap ErrInvalidControl", err)
			}
			return
		}
		for _, v := range []string{c.Package, c.Architecture, c.Maintainer, c.Section, c.Priority, c.Homepage} {
			if strings.ContainsAny(v, "\n") {
				t.Fatalf("a one-line field holds a line break: %q", v)
			}
		}
		for _, l := range slices.Concat(c.Depends, c.PreDepends, c.Recommends, c.Suggests, c.Conflicts, c.Breaks, c.Replaces, c.Provides) {
			if l == "" || strings.Contains(l, ",") || strings.Contains(l, "\n") {
				t.Fatalf("a relationship %q is empty or holds a comma or line break", l)
			}
		}
	})
}
