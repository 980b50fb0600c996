package manifest

import (
	"bytes"
	"testing"
)

func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"web-1", "..", "a/b", "", "x.y_z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckName("server", s) != nil {
			return
		}
		// A valid name is safe as a single path element.
		if s == "." || s == ".." || bytes.ContainsAny([]byte(s), "/\\\x00") || len(s) > MaxNameLen {
			t.Fatalf("unsafe name %q accepted", s)
		}
	})
}

func FuzzParsePackageName(f *testing.F) {
	for _, s := range []string{"hello/hello-20261122T101500Z-0123456789ab.tar.zst", "a/a-20261122T101500Z-0123456789ab-dirty.tar.gz", "x/y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePackageName(s)
		if err != nil {
			return
		}
		if p.String() != s {
			t.Fatalf("ParsePackageName(%q).String() = %q", s, p.String())
		}
		if CheckName("app", p.App) != nil || bytes.ContainsAny([]byte(p.ID()), "/\\\x00") || p.ID() == "." || p.ID() == ".." {
			t.Fatalf("unsafe parts accepted from %q: %+v", s, p)
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"revision":1,"packages":["hello/hello-20261122T101500Z-0123456789ab.tar.zst"]}`,
		`["hello/hello-20261122T101500Z-0123456789ab.tar.zst"]`,
		`{"packages":[{"package":"api/api-20261121T080000Z-89abcdef0123.tar.zst","env":"c","config":{"A":"b"},"on_failure":"stop","restart":"x"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		out := m.Marshal()
		m2, err := Parse(out)
		if err != nil {
			t.Fatalf("canonical output does not parse: %v\n%s", err, out)
		}
		if !bytes.Equal(m2.Marshal(), out) {
			t.Fatalf("canonical output is not a fixed point:\n%s\n%s", out, m2.Marshal())
		}
	})
}
