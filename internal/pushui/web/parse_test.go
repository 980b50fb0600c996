package web

import (
	"maps"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/internal/fleetview"
)

func TestParseConfigText(t *testing.T) {
	tests := []struct {
		name, text string
		want       map[string]string
		err        string
	}{
		{"empty", "\n  \n# only a comment\n", nil, ""},
		{"values", "A=1\nB_2 = two words \nURL=http://x/?a=b=c\r\n", map[string]string{"A": "1", "B_2": "two words", "URL": "http://x/?a=b=c"}, ""},
		{"empty value", "EMPTY=\n", map[string]string{"EMPTY": ""}, ""},
		{"no equals", "A=1\nJUSTAKEY\n", nil, "config line 2: want KEY=VALUE"},
		{"lower-case key", "log_level=debug", map[string]string{"log_level": "debug"}, ""},
		{"hyphen in key", "log-level=1", nil, `config line 1: config key "log-level"`},
		{"empty key", "=1", nil, "config line 1"},
		{"twice", "A=1\n\nA=2", nil, "config line 3: A given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfigText(tt.text)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !maps.Equal(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
			if again, err := parseConfigText(fleetview.FormatConfigText(got)); err != nil || !maps.Equal(again, got) {
				t.Errorf("round trip: %v, %v", again, err)
			}
		})
	}
	if configEditable(map[string]string{"A": "two\nlines"}) || configEditable(map[string]string{"A": " padded"}) || !configEditable(map[string]string{"A": "a b"}) {
		t.Error("configEditable")
	}
}
