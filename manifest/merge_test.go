package manifest_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/pushpull/pushpull/manifest"
)

func mergePkg(t *testing.T, app string, minute int) manifest.PackageName {
	t.Helper()
	p, err := manifest.NewPackageName(app, time.Date(2026, 11, 1, 12, minute, 0, 0, time.UTC), "0123456789ab", false, manifest.FormatZstd)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMerge(t *testing.T) {
	hello1, hello2, hello3 := mergePkg(t, "hello", 1), mergePkg(t, "hello", 2), mergePkg(t, "hello", 3)
	api1, db1 := mergePkg(t, "api", 1), mergePkg(t, "db", 1)
	m := func(ps ...manifest.PackageName) *manifest.Manifest {
		out := &manifest.Manifest{Packages: []manifest.Entry{}}
		for _, p := range ps {
			out.Packages = append(out.Packages, manifest.Entry{Package: p})
		}
		return out
	}
	srv := func(mf *manifest.Manifest) manifest.Source {
		return manifest.Source{Target: manifest.Server("web-1"), Manifest: mf}
	}
	grp := func(name string, mf *manifest.Manifest) manifest.Source {
		return manifest.Source{Target: manifest.Group(name), Manifest: mf}
	}
	tests := []struct {
		name      string
		sources   []manifest.Source
		want      []string // env=package-minute@source
		held      []string
		missing   []string
		overrides map[string][]string
	}{
		{name: "server only", sources: []manifest.Source{srv(m(hello1, api1))},
			want: []string{"hello=" + hello1.String() + "@server", "api=" + api1.String() + "@server"}},
		{name: "group only, no server manifest", sources: []manifest.Source{srv(nil), grp("web", m(hello1))},
			want: []string{"hello=" + hello1.String() + "@group:web"}},
		{name: "server entry wins", sources: []manifest.Source{grp("web", m(hello1, api1)), srv(m(hello2))},
			want:      []string{"hello=" + hello2.String() + "@server", "api=" + api1.String() + "@group:web"},
			overrides: map[string][]string{"hello": {"web"}}},
		{name: "two groups name one env", sources: []manifest.Source{srv(nil), grp("web", m(hello1, api1)), grp("canary", m(hello3, db1))},
			want: []string{"api=" + api1.String() + "@group:web", "db=" + db1.String() + "@group:canary"},
			held: []string{"hello"}},
		{name: "the server settles a conflict", sources: []manifest.Source{srv(m(hello2)), grp("web", m(hello1)), grp("canary", m(hello3))},
			want:      []string{"hello=" + hello2.String() + "@server"},
			overrides: map[string][]string{"hello": {"web", "canary"}}},
		{name: "missing group", sources: []manifest.Source{srv(nil), grp("web", m(hello1)), grp("gone", nil)},
			want: []string{"hello=" + hello1.String() + "@group:web"}, missing: []string{"gone"}},
		{name: "empty group removes", sources: []manifest.Source{srv(nil), grp("web", m())}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := manifest.Merge(tc.sources)
			var got []string
			for _, e := range d.Entries {
				got = append(got, e.EnvName()+"="+e.Package.String()+"@"+string(d.From[e.EnvName()].Source()))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("entries = %q, want %q", got, tc.want)
			}
			if held := slices.Sorted(maps.Keys(d.Held)); !slices.Equal(held, tc.held) {
				t.Errorf("held = %q, want %q", held, tc.held)
			}
			for env, why := range d.Held {
				if why == "" {
					t.Errorf("held env %s without a reason", env)
				}
			}
			if !slices.Equal(d.Missing, tc.missing) {
				t.Errorf("missing = %q, want %q", d.Missing, tc.missing)
			}
			if tc.overrides == nil {
				tc.overrides = map[string][]string{}
			}
			if !maps.EqualFunc(d.Overrides, tc.overrides, slices.Equal) {
				t.Errorf("overrides = %v, want %v", d.Overrides, tc.overrides)
			}
		})
	}
}
