package main

import (
	"io"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/internal/nudge"
	"github.com/pushpull/pushpull/internal/testing/syncbuf"
)

// TestNudgeGCEFlag checks that -nudge-gce, or $PUSHPULL_NUDGE_GCE without
// it, reaches the GCE nudger, which is checked before pushui listens: a
// malformed value is refused, and a good one without Application Default
// Credentials fails for want of them. The flag wins over the variable.
func TestNudgeGCEFlag(t *testing.T) {
	conf := writeFile(t, "push.json", `{"servers": {"web-1": ["hello"]}}`)
	base := []string{"-bucket", "mem://", "-config", conf, "-addr", "127.0.0.1:0", "-refresh", "0"}
	tests := []struct {
		name string
		env  string
		args []string
		say  []string
	}{
		{"flag malformed", "", []string{"-nudge-gce", "my-project"}, []string{`nudge: GCE "my-project": want PROJECT/ZONE`}},
		{"env malformed", "my-project/us-central1-a/x", nil, []string{`nudge: GCE "my-project/us-central1-a/x"`}},
		{"flag without credentials", "", []string{"-nudge-gce", "my-project/us-central1-a"}, []string{"nudge: gce:", "/nonexistent/adc.json"}},
		{"flag wins over env", "not-a-pair", []string{"-nudge-gce", "my-project/us-central1-a"}, []string{"nudge: gce:", "/nonexistent/adc.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(nudge.EnvGCE, tt.env)
			t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/adc.json")
			// A start-up failure is one plain line, not a log record.
			var stderr syncbuf.Buffer
			if code := run(append(base, tt.args...), strings.NewReader(""), io.Discard, &stderr); code != 1 {
				t.Errorf("exit %d, want 1; stderr:\n%s", code, stderr.String())
			}
			for _, want := range tt.say {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
				}
			}
			if strings.Contains(stderr.String(), "msg=listening") {
				t.Errorf("pushui listened despite a bad nudge configuration:\n%s", stderr.String())
			}
		})
	}
}
