package skia_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/internal/skia"
	"github.com/pushpull/pushpull/manifest"
)

// Names in Skia push's format, as its server/{host}.json lists them.
const (
	skiaHello1 = "hello/hello:alice@build-1.corp:2014-12-09T18:45:59Z:2d9eea8b121f61ac8f1ab853fedc30fc092b3f70.deb"
	skiaHello2 = "hello/hello:alice@build-1.corp:2014-12-09T19:05:02Z:7e0ff6059e653eb75a36efb621d0fd66d1ced433.deb"
)

// TestParseName covers Skia's names and their refusals.
func TestParseName(t *testing.T) {
	p, err := skia.ParseName(skiaHello2)
	if err != nil {
		t.Fatal(err)
	}
	if p.App != "hello" || p.User != "alice" || p.Host != "build-1.corp" || !p.Built.Equal(time.Date(2014, 12, 9, 19, 5, 2, 0, time.UTC)) || p.Commit != "7e0ff6059e653eb75a36efb621d0fd66d1ced433" {
		t.Errorf("parsed %+v", p)
	}
	if n, _ := p.PackageName(false); n.String() != "hello/hello-20141209T190502Z-7e0ff6059e65.deb" {
		t.Errorf("pushpull name %s", n)
	}
	for _, bad := range []string{
		"hello/", "hello", "hello/web:a@b:2014-12-09T19:05:02Z:7e0ff6059e65.deb",
		"hello/hello:a@b:2014-12-09T19:05:02Z:7e0ff6059e65.tar.gz", "hello/hello:a@b:yesterday:7e0ff6059e65.deb",
		"hello/hello:a@b:2014-12-09T19:05:02Z:xyz.deb", "hello/hello:2014-12-09T19:05:02Z.deb", "Hello/Hello:a@b:2014-12-09T19:05:02Z:7e0ff6059e65.deb",
	} {
		if _, err := skia.ParseName(bad); !errors.Is(err, skia.ErrName) {
			t.Errorf("skia.ParseName(%q) = %v, want skia.ErrName", bad, err)
		}
	}
	if _, err := manifest.ParsePackageName(skiaHello2); err == nil || !strings.Contains(err.Error(), "release -import-skia") {
		t.Errorf("a Skia name in a manifest: %v, want a pointer to the importer", err)
	}
}

// FuzzParseName checks ParseName's contract: it never panics,
// refusals wrap skia.ErrName, and what it accepts has a valid pushpull name.
func FuzzParseName(f *testing.F) {
	for _, s := range []string{skiaHello1, skiaHello2, "hello/", "a/a:b@c:2014-12-09T19:05:02+01:00:0123456789ab.deb", "a/a::::.deb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := skia.ParseName(s)
		if err != nil {
			if !errors.Is(err, skia.ErrName) {
				t.Fatalf("error %v does not wrap skia.ErrName", err)
			}
			return
		}
		for _, dirty := range []bool{false, true} {
			n, err := p.PackageName(dirty)
			if err != nil {
				t.Fatalf("accepted %q, whose pushpull name fails: %v", s, err)
			}
			if back, err := manifest.ParsePackageName(n.String()); err != nil || back != n {
				t.Fatalf("pushpull name %s of %q does not parse back: %v", n, s, err)
			}
		}
	})
}

// TestParseServer takes Skia's list, and the object form, and refuses the
// rest.
func TestParseServer(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`["` + skiaHello1 + `", "logserver/"]`, []string{skiaHello1, "logserver/"}},
		{`{"Names": ["` + skiaHello2 + `"]}`, []string{skiaHello2}},
		{`[]`, []string{}},
		{`{}`, nil},
		{`null`, nil},
		{`"x"`, nil},
	} {
		got, err := skia.ParseServer([]byte(tc.in))
		if tc.want == nil {
			if err == nil {
				t.Errorf("ParseServer(%s) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("ParseServer(%s) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
