package release

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkgformat"
)

// TestUnpacks checks that what release writes is what the host's unpacker
// (pkgformat.Extract, used by pulld) accepts and restores: contents, modes
// (minus setuid/setgid/sticky, which it drops), links and mtimes.
func TestUnpacks(t *testing.T) {
	for _, format := range []string{"tar.zst", "tar.gz"} {
		t.Run(format, func(t *testing.T) {
			bucket := "file://" + t.TempDir() // one build is one package, whatever its format
			cfg := testConfig(bucket, "hello", appTree(t))
			cfg.Format = manifest.Format(format)
			res, err := Run(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			r, _, err := openStore(t, bucket).OpenPackage(t.Context(), res.Name)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			dir := t.TempDir()
			if _, err := pkgformat.Extract(r, res.Name.Format, dir, pkgformat.Limits{}); err != nil {
				t.Fatalf("Extract: %v", err)
			}
			for name, m := range wantMembers {
				p := filepath.Join(dir, filepath.FromSlash(strings.TrimSuffix(name, "/")))
				fi, err := os.Lstat(p)
				if err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				switch m.typ {
				case '0':
					data, _ := os.ReadFile(p)
					if string(data) != m.data || int64(fi.Mode().Perm()) != m.mode&0o777 {
						t.Errorf("%s: %q mode %v, want %q mode %o", name, data, fi.Mode(), m.data, m.mode&0o777)
					}
				case '2':
					if target, _ := os.Readlink(p); target != m.link {
						t.Errorf("%s: link to %q, want %q", name, target, m.link)
					}
				}
				if m.typ != '2' && !fi.ModTime().Equal(fixedNow) {
					t.Errorf("%s: mtime %v, want %v", name, fi.ModTime(), fixedNow)
				}
			}
		})
	}
}
