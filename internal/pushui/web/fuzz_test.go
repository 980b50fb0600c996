package web

import (
	"maps"
	"testing"

	"github.com/pushpull/pushpull/internal/fleetview"
	"github.com/pushpull/pushpull/manifest"
)

// FuzzParseConfigText: the parser never panics, accepts only valid keys,
// and what it accepts survives formatting and parsing again.
func FuzzParseConfigText(f *testing.F) {
	f.Add("A=1\nB = two words\n# c\n")
	f.Add("URL=http://x/?a=b=c\r\n\n")
	f.Add("bad key=1")
	f.Fuzz(func(t *testing.T, text string) {
		m, err := parseConfigText(text)
		if err != nil {
			return
		}
		for k := range m {
			if err := manifest.CheckConfigKey(k); err != nil {
				t.Fatalf("accepted %v", err)
			}
		}
		again, err := parseConfigText(fleetview.FormatConfigText(m))
		if err != nil || !maps.Equal(again, m) {
			t.Fatalf("round trip of %q: %v, %v", m, again, err)
		}
	})
}
