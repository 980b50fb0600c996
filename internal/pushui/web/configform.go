package web

import (
	"fmt"
	"strings"

	"github.com/pushpull/pushpull/manifest"
)

// parseConfigText parses the config form's text area: one KEY=VALUE per
// line. Blank lines and lines starting with # are ignored; spaces around
// the key and the value are trimmed; the value may contain '='. Keys must
// be valid config keys (manifest.CheckConfigKey) and appear once. Errors
// name the line. An empty text gives an empty (nil) map.
func parseConfigText(text string) (map[string]string, error) {
	var m map[string]string
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("config line %d: want KEY=VALUE", i+1)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if err := manifest.CheckConfigKey(k); err != nil {
			return nil, fmt.Errorf("config line %d: %w", i+1, err)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("config line %d: %s given twice", i+1, k)
		}
		if m == nil {
			m = make(map[string]string)
		}
		m[k] = v
	}
	return m, nil
}

// configEditable reports whether every value of m survives a round trip
// through the text area: no line breaks and no surrounding spaces.
func configEditable(m map[string]string) bool {
	for _, v := range m {
		if strings.ContainsAny(v, "\r\n") || strings.TrimSpace(v) != v {
			return false
		}
	}
	return true
}
