package pkgformat

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/internal/testing/unprivileged"
)

func lookupIn(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestRender(t *testing.T) {
	config := map[string]string{
		"PORT":      "8080",
		"LOG_LEVEL": "debug",
		"EMPTY":     "",
		"DOLLAR":    "a$b ${TELETRAAN_PORT} {$TELETRAAN_PORT}", // inserted verbatim, not expanded again
		"_X1":       "x1",
	}
	tests := []struct{ name, in, want string }{
		{"brace-dollar", "port={$TELETRAAN_PORT}", "port=8080"},
		{"dollar-brace", "port=${TELETRAAN_PORT}", "port=8080"},
		{"value wins over default", "{$TELETRAAN_PORT:9000} ${TELETRAAN_PORT:9000}", "8080 8080"},
		{"default", "{$TELETRAAN_HOST:localhost}:${TELETRAAN_MISSING:1}", "localhost:1"},
		{"empty default", "[{$TELETRAAN_X:}][${TELETRAAN_X:}]", "[][]"},
		{"empty value is a value", "[{$TELETRAAN_EMPTY:default}]", "[]"},
		{"default with spaces and colons", "{$TELETRAAN_URL:http://a:80/x?y=$z {q}", "http://a:80/x?y=$z {q"},
		{"multiple per line", "{$TELETRAAN_PORT}{$TELETRAAN_LOG_LEVEL}-${TELETRAAN_PORT}", "8080debug-8080"},
		{"value containing templates", "v={$TELETRAAN_DOLLAR}", "v=a$b ${TELETRAAN_PORT} {$TELETRAAN_PORT}"},
		{"underscore and digits", "{$TELETRAAN__X1}", "x1"},
		{"lone dollar and brace", "cost $5 {x} ${HOME} $ { } {$ ${ {TELETRAAN_PORT}", "cost $5 {x} ${HOME} $ { } {$ ${ {TELETRAAN_PORT}"},
		{"other prefix", "{$TELETRAANX} ${TELETRAAN} {$teletraan_PORT}", "{$TELETRAANX} ${TELETRAAN} {$teletraan_PORT}"},
		{"adjacent openers", "{${$TELETRAAN_PORT}$${TELETRAAN_PORT}", "{$8080$8080"},
		{"multi-line", "a\n{$TELETRAAN_PORT}\nb\n${TELETRAAN_LOG_LEVEL:x}\n", "a\n8080\nb\ndebug\n"},
		{"empty", "", ""},
		{"ends with opener", "x{$", "x{$"},
		{"binary bytes kept", "\x00\xff{$TELETRAAN_PORT}\xfe", "\x00\xff8080\xfe"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RenderTemplate([]byte(tc.in), lookupIn(config))
			if err != nil {
				t.Fatalf("RenderTemplate(%q): %v", tc.in, err)
			}
			if string(got) != tc.want {
				t.Errorf("RenderTemplate(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestRenderBare covers Teletraan's bare forms, $TELETRAAN_NAME and
// $TELETRAAN_{NAME}: substituted when NAME has a value, kept as written
// when it has none (Python's string.Template.safe_substitute).
func TestRenderBare(t *testing.T) {
	config := map[string]string{"PORT": "8080", "who": "test1", "log_level": "debug", "DOLLAR": "$TELETRAAN_PORT"}
	tests := []struct{ name, in, want string }{
		{"bare", "port=$TELETRAAN_PORT\n", "port=8080\n"},
		{"bare with no value kept", "$TELETRAAN_MISSING stays", "$TELETRAAN_MISSING stays"},
		{"longest name", "$TELETRAAN_PORTS $TELETRAAN_PORT.", "$TELETRAAN_PORTS 8080."},
		{"lower case", "level=$TELETRAAN_log_level", "level=debug"},
		{"case matters", "$TELETRAAN_port", "$TELETRAAN_port"},
		{"braced python form", "$TELETRAAN_{PORT}0 $TELETRAAN_{NOPE}", "80800 $TELETRAAN_{NOPE}"},
		{"unclosed python braces kept", "$TELETRAAN_{PORT", "$TELETRAAN_{PORT"},
		{"escaped opener", "$TELETRAAN_$TELETRAAN_PORT", "$TELETRAAN_PORT"},
		{"no name kept", "$TELETRAAN_ $TELETRAAN_1 $TELETRAAN_-x", "$TELETRAAN_ $TELETRAAN_1 $TELETRAAN_-x"},
		{"values not expanded again", "$TELETRAAN_DOLLAR", "$TELETRAAN_PORT"},
		{"hyphen ends the name", "$TELETRAAN_who-x", "test1-x"},
		{"beside braced forms", "${TELETRAAN_PORT} $TELETRAAN_PORT {$TELETRAAN_who}", "8080 8080 test1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RenderTemplate([]byte(tc.in), lookupIn(config))
			if err != nil || string(got) != tc.want {
				t.Errorf("RenderTemplate(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

// TestTeletraanTransformerCases reproduces the template cases of
// Teletraan's deploy-agent tests (tests/unit/deploy/staging/
// test_transformer.py) with the config values those tests load. Where
// pushpull differs, want is pushpull's documented result and why says why
// (docs/teletraan.md lists every difference).
func TestTeletraanTransformerCases(t *testing.T) {
	// The test's SCRIPT_CONFIG: who = "test1", Wh-O = 'test2', TEST = test3.
	config := map[string]string{"who": "test1", "Wh-O": "test2", "TEST": "test3"}
	tests := []struct{ name, in, want, why string }{
		{"test1.tmpl", "$TELETRAAN_who is $TELETRAAN_mike.", "test1 is $TELETRAAN_mike.", ""},
		{"test2.tmpl", `$TEST="$TELETRAAN_Wh-O"`, `$TEST="$TELETRAAN_Wh-O"`,
			"Teletraan gives $TEST=\"test2\": its names may contain '-'; pushpull's are [A-Za-z_][A-Za-z0-9_]*, because config keys are also the scripts' environment variables, so Wh-O cannot be a config key and $TELETRAAN_Wh names Wh"},
		{"braced with default, value set", "{$TELETRAAN_who:nobody}", "test1", ""},
		{"braced with default, no value", "{$TELETRAAN_mike:nobody}", "nobody", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RenderTemplate([]byte(tc.in), lookupIn(config))
			if err != nil || string(got) != tc.want {
				t.Errorf("RenderTemplate(%q) = %q, %v; want %q %s", tc.in, got, err, tc.want, tc.why)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct{ name, in, msg string }{
		{"missing value", "a\nb\nport={$TELETRAAN_PORT}\n", `render: line 3: template error: {$TELETRAAN_PORT}: config value PORT is not set and there is no default`},
		{"missing value, dollar form", "${TELETRAAN_HOST}", `line 1: template error: ${TELETRAAN_HOST}: config value HOST is not set`},
		{"second on the line", "{$TELETRAAN_A:1} ${TELETRAAN_B}", `line 1: template error: ${TELETRAAN_B}: config value B is not set`},
		{"unterminated", "x\n{$TELETRAAN_PORT\n", `line 2: template error: "{$TELETRAAN_PORT": unterminated reference to TELETRAAN_PORT`},
		{"default across a newline", "{$TELETRAAN_A:x\ny}", `line 1: template error: "{$TELETRAAN_A:x": unterminated`},
		{"empty name", "${TELETRAAN_}", `must be followed by a name`},
		{"name starting with a digit", "${TELETRAAN_1X}", `must be followed by a name`},
		{"bad character in name", "${TELETRAAN_A-B}", `unterminated reference to TELETRAAN_A`},
		{"at end of input", "${TELETRAAN_A", `unterminated`},
		{"lower-case name with no value", "{$TELETRAAN_port}", `line 1: template error: {$TELETRAAN_port}: config value port is not set`},
		{"case matters", "${TELETRAAN_a}", `config value a is not set`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RenderTemplate([]byte(tc.in), lookupIn(map[string]string{"A": "a"}))
			if err == nil {
				t.Fatalf("RenderTemplate(%q) = %q, want an error", tc.in, got)
			}
			if !errors.Is(err, ErrTemplate) {
				t.Errorf("error %v does not wrap ErrTemplate", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not contain %q", err, tc.msg)
			}
		})
	}
}

func TestRenderLookupKey(t *testing.T) {
	var asked []string
	RenderTemplate([]byte("{$TELETRAAN_LOG_LEVEL:x} ${TELETRAAN_A}"), func(k string) (string, bool) {
		asked = append(asked, k)
		return "v", true
	})
	if strings.Join(asked, ",") != "LOG_LEVEL,A" {
		t.Errorf("lookup was asked for %q, want [LOG_LEVEL A]", asked)
	}
}

func write(t *testing.T, p, s string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func TestTree(t *testing.T) {
	dir := t.TempDir()
	tl := filepath.Join(dir, "teletraan")
	write(t, filepath.Join(tl, "RESTARTING.tmpl"), "#!/bin/sh\nexec app -port {$TELETRAAN_PORT:80}\n", 0o755)
	write(t, filepath.Join(tl, "api-canary", "app.yaml.tmpl"), "level: ${TELETRAAN_LOG_LEVEL}\n", 0o640)
	write(t, filepath.Join(tl, "plain.txt"), "{$TELETRAAN_PORT}", 0o644)     // not a template
	write(t, filepath.Join(dir, "outside.tmpl"), "{$TELETRAAN_NOPE}", 0o644) // not under teletraan/
	write(t, filepath.Join(tl, "old.tmpl"), "new {$TELETRAAN_PORT}", 0o600)  // replaces a stale render
	write(t, filepath.Join(tl, "old"), "stale", 0o644)                       //
	config := map[string]string{"PORT": "8080", "LOG_LEVEL": "debug"}
	if err := RenderTemplates(dir, config); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		body string
		mode fs.FileMode
	}{
		{"teletraan/RESTARTING", "#!/bin/sh\nexec app -port 8080\n", 0o755},
		{"teletraan/RESTARTING.tmpl", "#!/bin/sh\nexec app -port {$TELETRAAN_PORT:80}\n", 0o755},
		{"teletraan/api-canary/app.yaml", "level: debug\n", 0o640},
		{"teletraan/plain.txt", "{$TELETRAAN_PORT}", 0o644},
		{"teletraan/old", "new 8080", 0o600},
	} {
		p := filepath.Join(dir, c.name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if string(b) != c.body {
			t.Errorf("%s = %q, want %q", c.name, b, c.body)
		}
		if fi, _ := os.Stat(p); fi.Mode() != c.mode {
			t.Errorf("%s: mode %v, want %v", c.name, fi.Mode(), c.mode)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "outside")); err == nil {
		t.Errorf("rendered a template outside teletraan/")
	}
	// Leftover temporary files would be visible here.
	ents, _ := os.ReadDir(tl)
	if len(ents) != 6 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("teletraan/ holds %v", names)
	}

	// A RESTART re-renders from the kept .tmpl with new values.
	config["PORT"] = "9090"
	if err := RenderTemplates(dir, config); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(tl, "RESTARTING")); string(b) != "#!/bin/sh\nexec app -port 9090\n" {
		t.Errorf("re-render: %q", b)
	}
}

func TestTreeErrors(t *testing.T) {
	t.Run("missing value names the file", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "teletraan", "conf.tmpl")
		write(t, p, "ok\n{$TELETRAAN_DB_URL}\n", 0o644)
		err := RenderTemplates(dir, nil)
		if !errors.Is(err, ErrTemplate) {
			t.Fatalf("err = %v", err)
		}
		want := "render: " + p + ": line 2: template error: {$TELETRAAN_DB_URL}: config value DB_URL is not set and there is no default"
		if err.Error() != want {
			t.Errorf("err = %q, want %q", err, want)
		}
		if _, err := os.Stat(filepath.Join(dir, "teletraan", "conf")); err == nil {
			t.Errorf("a failed render left an output file")
		}
	})
	t.Run("symlinked template", func(t *testing.T) {
		dir := t.TempDir()
		write(t, filepath.Join(dir, "real"), "x", 0o644)
		os.MkdirAll(filepath.Join(dir, "teletraan"), 0o755)
		if err := os.Symlink("../real", filepath.Join(dir, "teletraan", "s.tmpl")); err != nil {
			t.Fatal(err)
		}
		err := RenderTemplates(dir, nil)
		if err == nil || !strings.Contains(err.Error(), "s.tmpl: template is not a regular file") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("no teletraan dir", func(t *testing.T) {
		if err := RenderTemplates(t.TempDir(), nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("missing build dir", func(t *testing.T) {
		if err := RenderTemplates(filepath.Join(t.TempDir(), "nope"), nil); err != nil {
			t.Fatal(err) // nothing to render
		}
	})
}

// TestTreeReadOnlyDirs checks that Tree renders, and renders again, into
// directories their owner may not write to, keeping each template's mode on
// its rendered file and leaving each directory's mode as it found it. It
// runs as a user whom permission bits bind (nobody, when the tests run as
// root), so that it fails if Tree stops making such a directory writable.
func TestTreeReadOnlyDirs(t *testing.T) {
	if unprivileged.Run(t) {
		return
	}
	for _, tc := range []struct {
		name     string
		template string      // under teletraan/
		tmplMode fs.FileMode // of the template
		dirModes map[string]fs.FileMode
	}{
		{"read-only teletraan", "app.conf.tmpl", 0o640, map[string]fs.FileMode{"teletraan": 0o555}},
		{"read-only teletraan, owner only", "app.conf.tmpl", 0o600, map[string]fs.FileMode{"teletraan": 0o500}},
		{"read-only subdirectory", "prod/RESTARTING.tmpl", 0o755, map[string]fs.FileMode{"teletraan": 0o555, "teletraan/prod": 0o505}},
		{"read-only template", "app.conf.tmpl", 0o400, map[string]fs.FileMode{"teletraan": 0o755}},
		{"sticky read-only teletraan", "app.conf.tmpl", 0o644, map[string]fs.FileMode{"teletraan": fs.ModeSticky | 0o555}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tmpl := filepath.Join(dir, "teletraan", tc.template)
			write(t, tmpl, "port={$TELETRAAN_PORT:80}\n", tc.tmplMode)
			// Deepest first, as unpack does.
			names := slices.Sorted(maps.Keys(tc.dirModes))
			for _, d := range slices.Backward(names) {
				if err := os.Chmod(filepath.Join(dir, d), tc.dirModes[d]); err != nil {
					t.Fatal(err)
				}
			}
			unprivileged.RemovableTree(t, dir)

			for _, port := range []string{"8080", "9090"} { // deploy, then RESTART
				if err := RenderTemplates(dir, map[string]string{"PORT": port}); err != nil {
					t.Fatalf("Tree with PORT=%s: %v", port, err)
				}
				out := strings.TrimSuffix(tmpl, TemplateSuffix)
				b, err := os.ReadFile(out)
				if err != nil || string(b) != "port="+port+"\n" {
					t.Errorf("rendered with PORT=%s: %q %v", port, b, err)
				}
				if got, want := lmode(out), tc.tmplMode.String(); got != want {
					t.Errorf("rendered file: %s, want the template's %s", got, want)
				}
				for _, d := range names {
					if got, want := lmode(filepath.Join(dir, d)), (fs.ModeDir | tc.dirModes[d]).String(); got != want {
						t.Errorf("%s after Tree: %s, want %s", d, got, want)
					}
				}
			}
		})
	}
}
