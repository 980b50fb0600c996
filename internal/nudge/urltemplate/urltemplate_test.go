package urltemplate

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in        string
		ok        bool
		perServer bool
		expand    string // expansion for web-1
	}{
		{"http://{server}:8080/nudge", true, true, "http://web-1:8080/nudge"},
		{"nats://pushpull.{server}?natsv2=true", true, true, "nats://pushpull.web-1?natsv2=true"},
		{"mem://nudge-{server}-{server}", true, true, "mem://nudge-web-1-web-1"},
		{"nats://pushpull.nudge", true, false, "nats://pushpull.nudge"},
		{"", true, false, ""},
		{"{server}", true, true, "web-1"},
		{"nats://{host}", false, false, ""},
		{"nats://{SERVER}", false, false, ""},
		{"nats://{server", false, false, ""},
		{"nats://server}", false, false, ""},
		{"nats://{{server}}", false, false, ""},
		{"nats://{}", false, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			tmpl, err := Parse(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("Parse(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if !tt.ok {
				if !strings.Contains(err.Error(), Placeholder) {
					t.Errorf("error %q does not name the placeholder", err)
				}
				return
			}
			if tmpl.String() != tt.in {
				t.Errorf("String() = %q, want %q", tmpl.String(), tt.in)
			}
			if tmpl.PerServer() != tt.perServer {
				t.Errorf("PerServer() = %v, want %v", tmpl.PerServer(), tt.perServer)
			}
			if got := tmpl.Expand("web-1"); got != tt.expand {
				t.Errorf("Expand(web-1) = %q, want %q", got, tt.expand)
			}
		})
	}
}

// FuzzParseURLTemplate checks that Parse never panics, that it accepts
// exactly the strings whose only braces are those of {server}, and that an
// accepted template expands, for any valid server name, to a string without
// braces that differs between servers exactly when PerServer says so.
func FuzzParseURLTemplate(f *testing.F) {
	for _, s := range []string{
		"http://{server}:8080/nudge",
		"nats://pushpull.{server}?natsv2=true",
		"mem://x",
		"nats://{server",
		"nats://{{server}}",
		"{server}{server}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tmpl, err := Parse(s)
		stray := strings.ContainsAny(strings.ReplaceAll(s, Placeholder, ""), "{}")
		if (err != nil) != stray {
			t.Fatalf("Parse(%q) error = %v, but stray braces = %v", s, err, stray)
		}
		if err != nil {
			return
		}
		a, b := tmpl.Expand("web-1"), tmpl.Expand("x.y_z-0")
		if strings.ContainsAny(a+b, "{}") {
			t.Fatalf("Parse(%q) expands to %q and %q, with braces", s, a, b)
		}
		if (a != b) != tmpl.PerServer() {
			t.Fatalf("Parse(%q): expansions %q and %q, PerServer() = %v", s, a, b, tmpl.PerServer())
		}
	})
}
