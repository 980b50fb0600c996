package release

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pushpull/pushpull/blobstore"
)

// TestValidationErrors checks that every invalid tree is refused before
// anything is uploaded, with an error naming the file at fault.
func TestValidationErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]file
		say   []string
	}{
		{"misspelt script", map[string]file{"teletraan/RESTARTNG": script},
			[]string{"teletraan/RESTARTNG", "not a deploy script name", "did you mean RESTARTING?"}},
		{"lower-case script", map[string]file{"teletraan/restarting": script},
			[]string{"teletraan/restarting", "did you mean RESTARTING?"}},
		{"script with extension", map[string]file{"teletraan/POST_RESTART.sh": script},
			[]string{"teletraan/POST_RESTART.sh", "did you mean POST_RESTART?"}},
		{"unknown upper-case name", map[string]file{"teletraan/DEPLOY": script},
			[]string{"teletraan/DEPLOY", "not a deploy script name"}},
		{"not executable", map[string]file{"teletraan/RESTARTING": {data: "#!/bin/sh\n", mode: 0o644}},
			[]string{"teletraan/RESTARTING", "not executable", "chmod +x"}},
		{"executable by others only", map[string]file{"teletraan/STOPPING": {data: "#!/bin/sh\n", mode: 0o655}},
			[]string{"teletraan/STOPPING", "not executable"}},
		{"script is a link", map[string]file{"bin/run": script, "teletraan/RESTARTING": {link: "../bin/run"}},
			[]string{"teletraan/RESTARTING", "regular file"}},
		{"misspelt in env dir", map[string]file{"teletraan/api-canary/PRE_RESTRAT": script},
			[]string{"teletraan/api-canary/PRE_RESTRAT", "did you mean PRE_RESTART?"}},
		{"not executable in env dir", map[string]file{"teletraan/api-canary/RESTARTING": {data: "x", mode: 0o600}},
			[]string{"teletraan/api-canary/RESTARTING", "not executable"}},
		{"template of a script not executable", map[string]file{"teletraan/RESTARTING.tmpl": {data: "x", mode: 0o644}},
			[]string{"teletraan/RESTARTING.tmpl", "not executable"}},
		{"bad env dir", map[string]file{"teletraan/API_Canary/RESTARTING": script},
			[]string{"teletraan/API_Canary", "named after an env"}},
		{"teletraan is a file", map[string]file{"teletraan": {data: "x"}},
			[]string{"teletraan", "must be a directory"}},
		{"absolute link", map[string]file{"etc": {link: "/etc"}},
			[]string{"etc", "leaves the tree"}},
		{"link climbing out", map[string]file{"a/up": {link: "../../x"}},
			[]string{"a/up", "leaves the tree"}},
		{"link climbing out through a link", map[string]file{"self": {link: "."}, "up": {link: "self/.."}},
			[]string{"up", "leaves the tree"}},
		{"several problems", map[string]file{"teletraan/RESTARTNG": script, "teletraan/STOPPING": {data: "x"}},
			[]string{"teletraan/RESTARTNG", "teletraan/STOPPING"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := makeTree(t, tt.files)
			bucket := "file://" + t.TempDir()
			_, err := Run(t.Context(), testConfig(bucket, "hello", dir))
			if !errors.Is(err, ErrInvalidTree) {
				t.Fatalf("Run = %v, want ErrInvalidTree", err)
			}
			for _, s := range tt.say {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error does not say %q: %v", s, err)
				}
			}
			assertEmpty(t, bucket)
		})
	}
}

// TestValidationFIFO checks that special files are refused.
func TestValidationFIFO(t *testing.T) {
	dir := makeTree(t, map[string]file{"ok": {data: "x"}})
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	_, err := Run(t.Context(), testConfig("file://"+t.TempDir(), "hello", dir))
	if !errors.Is(err, ErrInvalidTree) || !strings.Contains(err.Error(), "pipe: unsupported file type") {
		t.Fatalf("Run = %v, want ErrInvalidTree naming pipe", err)
	}
}

// TestValidationAllowed checks trees that must be accepted, and the
// warning for a tree without teletraan/.
func TestValidationAllowed(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]file
		warn  bool
	}{
		{"all six scripts", map[string]file{
			"teletraan/PRE_DOWNLOAD": script, "teletraan/POST_DOWNLOAD": script, "teletraan/PRE_RESTART": script,
			"teletraan/RESTARTING": script, "teletraan/POST_RESTART": script, "teletraan/STOPPING": script}, false},
		{"helpers and templates", map[string]file{
			"teletraan/RESTARTING": script, "teletraan/common.sh": {data: "x"}, "teletraan/app.conf.tmpl": {data: "{$TELETRAAN_X:1}"},
			"teletraan/RESTARTING.tmpl": script, "teletraan/README.md": {data: "x"}}, false},
		{"env dirs", map[string]file{
			"teletraan/RESTARTING": script, "teletraan/api-canary/RESTARTING": script,
			"teletraan/api-canary/lib/ANYTHING": {data: "x"}}, false},
		{"empty teletraan", map[string]file{"teletraan": {dir: true}}, false},
		{"links inside the tree", map[string]file{"bin/app": {data: "x"}, "app": {link: "bin/app"}, "bin/self": {link: "../bin/app"}, "dangling": {link: "nowhere"}}, true},
		{"no teletraan", map[string]file{"config.json": {data: "{}"}}, true},
		{"git dir left out", map[string]file{".git/config": {data: "x"}, "teletraan/RESTARTING": script}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := makeTree(t, tt.files)
			var log bytes.Buffer
			cfg := testConfig("file://"+t.TempDir(), "hello", dir)
			cfg.Logger = slog.New(slog.NewTextHandler(&log, nil))
			if _, err := Run(t.Context(), cfg); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if warned := strings.Contains(log.String(), "no teletraan/ directory"); warned != tt.warn {
				t.Errorf("warned %v, want %v; log:\n%s", warned, tt.warn, log.String())
			}
		})
	}
}

// assertEmpty fails when the bucket holds anything under packages/.
func assertEmpty(t *testing.T, bucket string) {
	t.Helper()
	store, err := blobstore.Open(t.Context(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	apps, err := store.ListApps(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) > 0 {
		t.Errorf("bucket has packages of %v, want none", apps)
	}
	if dir := store.LocalDir(); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "packages")); err == nil {
			t.Errorf("packages/ exists in %s", dir)
		}
	}
}

// TestWarnsWritableModes: release warns about files and directories
// writable by group or others (hosts install them without those bits) and
// still packs them, modes as they are.
func TestWarnsWritableModes(t *testing.T) {
	tree := appTree(t)
	for _, p := range []string{filepath.Join(tree, "teletraan", "RESTARTING"), filepath.Join(tree, "teletraan")} {
		if err := os.Chmod(p, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	var logs strings.Builder
	cfg := testConfig("file://"+t.TempDir(), "hello", tree)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	if _, err := Run(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "writable by group or others") || !strings.Contains(out, "first=\"[teletraan teletraan/RESTARTING") {
		t.Fatalf("no warning about the writable modes:\n%s", out)
	}
}
