package pkgformat_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pushpull/pushpull/pkgformat"
)

func TestEscapes(t *testing.T) {
	for p, want := range map[string]bool{
		"a": false, "a/b": false, "./a": false, "a/../b": false, ".": false,
		"..": true, "../a": true, "a/../..": true, "a/../../b": true, "./../a": true,
	} {
		if got := pkgformat.Escapes(p); got != want {
			t.Errorf("Escapes(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestLinkEscapes(t *testing.T) {
	for _, tc := range []struct {
		rel, target string
		want        bool
	}{
		{"a", "b", false},
		{"d/link", "../b", false},
		{"d/link", "../../b", true},
		{"link", "..", true},
		{"link", "/etc/passwd", true},
		{"link", "", true},
		{"d/e/link", "../../x", false},
	} {
		if got := pkgformat.LinkEscapes(tc.rel, tc.target); got != tc.want {
			t.Errorf("LinkEscapes(%q, %q) = %v, want %v", tc.rel, tc.target, got, tc.want)
		}
	}
}

func TestScripts(t *testing.T) {
	s := pkgformat.Scripts()
	if len(s) != 6 || s[0] != pkgformat.PreDownload || s[5] != pkgformat.Stopping {
		t.Fatalf("Scripts() = %v", s)
	}
	s[0] = "changed"
	if !pkgformat.IsScript(pkgformat.PreDownload) || pkgformat.IsScript("changed") || pkgformat.IsScript("restarting") {
		t.Fatal("IsScript is wrong, or Scripts() shares its slice")
	}
}

func TestScriptsDir(t *testing.T) {
	dir := t.TempDir()
	if got := pkgformat.ScriptsDir(dir, "api"); got != filepath.Join(dir, "teletraan") {
		t.Errorf("without teletraan/api: %s", got)
	}
	if err := os.MkdirAll(filepath.Join(dir, "teletraan", "api"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := pkgformat.ScriptsDir(dir, "api"); got != filepath.Join(dir, "teletraan", "api") {
		t.Errorf("with teletraan/api: %s", got)
	}
}
