package unprivileged_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/pushpull/pushpull/internal/testing/unprivileged"
)

// TestRun checks that after Run the test runs as a user
// whom permission bits bind: it cannot create a file in a directory of its
// own with mode 0555, and t.TempDir works.
func TestRun(t *testing.T) {
	if unprivileged.Run(t) {
		return
	}
	if os.Geteuid() == 0 {
		t.Fatal("still root")
	}
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(ro, 0o755)
	err := os.WriteFile(filepath.Join(ro, "x"), nil, 0o644)
	if !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("creating a file in a 0555 directory: %v, want a permission error", err)
	}
}
