package pkgformat

import (
	"bytes"
	"testing"
)

// FuzzRender checks that Render never panics and never modifies its input,
// that input without a template reference (braced or bare) comes out
// unchanged, and that when every variable has a value (one without
// references) only malformed braced references fail and no braced
// reference survives.
func FuzzRender(f *testing.F) {
	for _, s := range []string{
		"",
		"plain text $ { } ${HOME}",
		"{$TELETRAAN_PORT:80}",
		"${TELETRAAN_LOG_LEVEL}",
		"{$TELETRAAN_X:}",
		"a\n{$TELETRAAN_A}{$TELETRAAN_B:b}\n${TELETRAAN_",
		"{${$TELETRAAN_A}$",
		"{$TELETRAAN_a}",
		"$TELETRAAN_A $TELETRAAN_{BB} $TELETRAAN_$TELETRAAN_ $TELETRAAN_",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		in := bytes.Clone(src)
		lookup := func(name string) (string, bool) {
			if len(name)%2 == 0 {
				return "", false
			}
			return "<" + name + ">", true
		}
		out, err := RenderTemplate(src, lookup)
		if !bytes.Equal(in, src) {
			t.Fatalf("Render modified its input")
		}
		hasRef := bytes.Contains(src, []byte("$"+TemplatePrefix)) || bytes.Contains(src, []byte("${"+TemplatePrefix))
		if !hasRef {
			if err != nil || !bytes.Equal(out, src) {
				t.Fatalf("RenderTemplate(%q) = %q, %v; want the input unchanged", src, out, err)
			}
			return
		}
		// With a value for every name, only malformed references fail,
		// and nothing that looks like a reference is left.
		all, errAll := RenderTemplate(src, func(string) (string, bool) { return "v", true })
		if errAll != nil {
			if err == nil {
				t.Fatalf("RenderTemplate(%q) failed only when every value was present: %v", src, errAll)
			}
			return
		}
		if bytes.Contains(all, []byte("{$"+TemplatePrefix)) || bytes.Contains(all, []byte("${"+TemplatePrefix)) {
			t.Fatalf("RenderTemplate(%q) = %q, which still holds a reference", src, all)
		}
	})
}
