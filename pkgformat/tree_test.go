package pkgformat

import (
	"io/fs"
	"strings"
	"testing"
)

func TestCheckScript(t *testing.T) {
	tests := []struct {
		name string
		mode fs.FileMode
		ok   bool
	}{
		{"RESTARTING", 0o755, true},
		{"RESTARTING", 0o700, true},
		{"RESTARTING", 0o644, false},
		{"RESTARTING", fs.ModeSymlink | 0o777, false},
		{"RESTARTNG", 0o755, false},
		{"Restarting", 0o755, false},
		{"stopping.py", 0o755, false},
		{"X", 0o644, false},
		{"helper.sh", 0o644, true},
		{"config.yaml.tmpl", 0o644, true},
		{"PRE_RESTART.tmpl", 0o755, true},
		{"PRE_RESTART.tmpl", 0o644, false},
		{".tmpl", 0o644, true},
		{"lib", 0o644, true},
	}
	for _, tt := range tests {
		if err := CheckScript(tt.name, tt.mode); (err == nil) != tt.ok {
			t.Errorf("CheckScript(%q, %v) = %v, want ok %v", tt.name, tt.mode, err, tt.ok)
		}
	}
}

// FuzzCheckScript checks that CheckScript never panics, accepts the six
// scripts when executable, and refuses any name that looks like a script
// but is not one.
func FuzzCheckScript(f *testing.F) {
	for _, s := range append([]string{"RESTARTNG", "helper.sh", "a.tmpl", ".tmpl", "STOPPING.tmpl", "ÄÖ", "restarting.py"}, Scripts()...) {
		f.Add(s, uint32(0o755))
	}
	f.Fuzz(func(t *testing.T, name string, mode uint32) {
		m := fs.FileMode(mode)
		err := CheckScript(name, m)
		base := strings.TrimSuffix(name, ".tmpl")
		if IsScript(base) && m.IsRegular() && m.Perm()&0o100 != 0 && err != nil {
			t.Fatalf("CheckScript(%q, %v) = %v for an executable script", name, m, err)
		}
		if !IsScript(base) && looksLikeScript(base) && err == nil {
			t.Fatalf("CheckScript(%q, %v) accepted a misnamed script", name, m)
		}
	})
}
