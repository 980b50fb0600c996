package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/nudge"
)

// TestNudgeGCEFlag checks that -nudge-gce, or $PUSHPULL_NUDGE_GCE without
// it, reaches the GCE nudger of -deploy, which is checked before anything
// is uploaded: a malformed value is refused, and a good one without
// Application Default Credentials fails for want of them (exit 2 either
// way). The flag wins over the variable.
func TestNudgeGCEFlag(t *testing.T) {
	tests := []struct {
		name string
		env  string
		args []string
		say  []string
	}{
		{"flag malformed", "", []string{"-nudge-gce", "my-project"}, []string{`nudge: GCE "my-project": want PROJECT/ZONE`}},
		{"env malformed", "my-project/", nil, []string{`nudge: GCE "my-project/": zone ""`}},
		{"flag without credentials", "", []string{"-nudge-gce", "my-project/us-central1-a"}, []string{"nudge: gce:", "/nonexistent/adc.json"}},
		{"flag wins over env", "not-a-pair", []string{"-nudge-gce", "my-project/us-central1-a"}, []string{"nudge: gce:", "/nonexistent/adc.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(nudge.EnvGCE, tt.env)
			t.Setenv(nudge.EnvTopic, "")
			t.Setenv(nudge.EnvURL, "")
			t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/adc.json")
			tree := filepath.Join(t.TempDir(), "ok")
			writeTree(t, tree, transcriptTrees["ok"])
			bucket := "file://" + t.TempDir()
			args := append([]string{"-bucket", bucket, "-app", "hello", "-dir", tree, "-commit", commitN(1), "-deploy", "web-1"}, tt.args...)
			var stdout, stderr strings.Builder
			if code := run(args, &stdout, &stderr); code != 2 {
				t.Errorf("exit %d, want 2; stderr:\n%s", code, stderr.String())
			}
			for _, want := range tt.say {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
				}
			}
			store, err := blobstore.Open(t.Context(), bucket)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			if names, err := store.ListPackageNames(t.Context(), "hello"); err != nil || len(names) > 0 {
				t.Errorf("packages after a refused nudge configuration: %v, %v", names, err)
			}
		})
	}
}
