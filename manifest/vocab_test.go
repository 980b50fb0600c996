package manifest_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/manifest"
)

// TestStatusVocabulary checks that a status naming a state, step, action
// or entry source pushpull does not define is refused whole, naming the
// word, and that every word pulld writes is accepted.
func TestStatusVocabulary(t *testing.T) {
	env := func(fields string) string {
		return `{"server": "web-1", "time": "2026-12-01T00:00:00Z", "envs": [{"env": "hello", ` + fields + `}]}`
	}
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"every word pushpull writes", env(`"state": "SERVING_BUILD", "step": "POST_RESTART", "action": "deploy", "source": "group:web",
			"recent": [{"package": "p", "action": "rollback", "state": "ROLLED_BACK", "step": "RESTARTING", "time": "2026-12-01T00:00:00Z"}]`), ""},
		{"the host's own manifest", env(`"state": "DEPLOYING", "source": "server"`), ""},
		{"nothing said", env(`"state": ""`), ""},
		{"an unknown state", env(`"state": "SERVING"`), `state "SERVING"`},
		{"an unknown step", env(`"state": "FAILED", "step": "POST_INSTALL"`), `step "POST_INSTALL"`},
		{"an unknown action", env(`"state": "DEPLOYING", "action": "reboot"`), `action "reboot"`},
		{"a source that is not a manifest", env(`"state": "DEPLOYING", "source": "bucket"`), `source "bucket"`},
		{"a group source with a bad name", env(`"state": "DEPLOYING", "source": "group:../x"`), `source "group:../x"`},
		{"an outcome's unknown step", env(`"state": "FAILED", "recent": [{"package": "p", "action": "deploy", "state": "FAILED", "step": "<b>", "time": "2026-12-01T00:00:00Z"}]`), `outcome step "<b>"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := manifest.ParseStatus([]byte(tc.doc))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (!errors.Is(err, manifest.ErrInvalidStatus) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want ErrInvalidStatus naming %s", err, tc.want)
			}
		})
	}
}

// TestEntrySource checks that Target.Source and ParseEntrySource are
// inverses.
func TestEntrySource(t *testing.T) {
	for _, target := range []manifest.Target{manifest.Group("web"), manifest.Server("")} {
		got, err := manifest.ParseEntrySource(target.Source())
		if err != nil || got != target {
			t.Errorf("ParseEntrySource(%q) = %v, %v; want %v", target.Source(), got, err, target)
		}
	}
}
