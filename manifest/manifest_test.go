package manifest

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/golden")

func TestCheckName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"web-1", true},
		{"a", true},
		{"0", true},
		{"api.v2_canary", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{strings.Repeat("a", 300), false},
		{"", false},
		{".", false},
		{"..", false},
		{"../x", false},
		{"../packages/x", false},
		{"a/b", false},
		{"-web", false},
		{".hidden", false},
		{"Web", false},
		{"web 1", false},
		{"web\x00", false},
		{"wéb", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckName("server", tt.name)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
			}
			if err != nil && (!errors.Is(err, ErrInvalidName) || !strings.Contains(err.Error(), "server")) {
				t.Fatalf("error %q does not wrap ErrInvalidName or name the kind", err)
			}
		})
	}
}

func TestPackageName(t *testing.T) {
	built := time.Date(2026, 11, 22, 10, 15, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want PackageName
		err  string
	}{
		{in: "hello/hello-20261122T101500Z-0123456789ab.tar.zst", want: PackageName{"hello", built, "0123456789ab", false, FormatZstd}},
		{in: "hello/hello-20261122T101500Z-0123456789ab-dirty.tar.gz", want: PackageName{"hello", built, "0123456789ab", true, FormatGzip}},
		{in: "a.b/a.b-20261122T101500Z-0123456789ab.tar.zst", want: PackageName{"a.b", built, "0123456789ab", false, FormatZstd}},
		{in: "hello-20261122T101500Z-0123456789ab.tar.zst", err: "want {app}"},
		{in: "hello/other-20261122T101500Z-0123456789ab.tar.zst", err: "does not start with hello-"},
		{in: "../hello-20261122T101500Z-0123456789ab.tar.zst", err: "app name"},
		{in: "hello/hello-20261122T101500Z-0123456789ab.zip", err: "extension"},
		{in: "hello/hello-20261122T101500Z-0123456789AB.tar.zst", err: "lowercase hex"},
		{in: "hello/hello-20261122T101500Z-0123456789a.tar.zst", err: "lowercase hex"},
		{in: "hello/hello-20261122T101500Z-0123456789abc.tar.zst", err: "lowercase hex"},
		{in: "hello/hello-20261322T101500Z-0123456789ab.tar.zst", err: "build time"},
		{in: "hello/hello-2026-11-22-0123456789ab.tar.zst", err: "build time"},
		{in: "hello/hello-20261122T101500Z-0123456789ab/x.tar.zst", err: "lowercase hex"},
		{in: "hello/hello-20261122T101500Z.tar.zst", err: "missing commit"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePackageName(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrInvalidPackage) {
					t.Fatalf("ParsePackageName(%q) = %v, want error containing %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.in || got.App != tt.want.App || !got.Built.Equal(tt.want.Built) || got.Commit != tt.want.Commit || got.Dirty != tt.want.Dirty || got.Format != tt.want.Format {
				t.Fatalf("ParsePackageName(%q) = %+v", tt.in, got)
			}
			if got.ID()+"."+string(got.Format) != got.File() || strings.Contains(got.ID(), "/") {
				t.Fatalf("ID %q / File %q inconsistent", got.ID(), got.File())
			}
		})
	}
}

func TestNewPackageName(t *testing.T) {
	at := time.Date(2026, 11, 22, 11, 15, 0, 999, time.FixedZone("CET", 3600))
	p, err := NewPackageName("hello", at, "0123456789ABCDEF0123", true, FormatZstd)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.String(), "hello/hello-20261122T101500Z-0123456789ab-dirty.tar.zst"; got != want {
		t.Fatalf("name %q, want %q", got, want)
	}
	for _, c := range []string{"", "xyz", "0123456789a", "g123456789abcd"} {
		if _, err := NewPackageName("hello", at, c, false, FormatZstd); err == nil {
			t.Errorf("commit %q accepted", c)
		}
	}
	if _, err := NewPackageName("Hello", at, "0123456789ab", false, FormatZstd); !errors.Is(err, ErrInvalidName) {
		t.Errorf("bad app accepted: %v", err)
	}
	if _, err := NewPackageName("hello", at, "0123456789ab", false, "zip"); err == nil {
		t.Error("bad format accepted")
	}
	older, _ := NewPackageName("hello", at.Add(-time.Hour), "0123456789ab", false, FormatZstd)
	if older.Compare(p) >= 0 || p.Compare(older) <= 0 || p.Compare(p) != 0 {
		t.Error("Compare does not order by build time")
	}
}

func TestParseManifestErrors(t *testing.T) {
	const p1 = `"hello/hello-20261122T101500Z-0123456789ab.tar.zst"`
	tests := []struct{ name, in, want string }{
		{"unknown top field", `{"revision":1,"packages":[],"extra":1}`, `unknown field "extra"`},
		{"unknown entry field", `{"packages":[{"package":` + p1 + `,"colour":"red"}]}`, `packages[0]: json: unknown field "colour"`},
		{"bad package name", `{"packages":["hello/nope.tar.zst"]}`, `packages[0]: invalid package name`},
		{"bad entry type", `{"packages":[42]}`, `packages[0]`},
		{"duplicate env", `{"packages":[` + p1 + `,` + p1 + `]}`, `packages[1] (hello/hello-20261122T101500Z-0123456789ab.tar.zst): env "hello" already used by packages[0]`},
		{"duplicate explicit env", `{"packages":[{"package":` + p1 + `,"env":"x"},{"package":"api/api-20261122T101500Z-0123456789ab.tar.zst","env":"x"}]}`, `env "x" already used`},
		{"bad env", `{"packages":[{"package":` + p1 + `,"env":"../x"}]}`, `packages[0] (hello/hello-20261122T101500Z-0123456789ab.tar.zst): invalid name: env name "../x"`},
		{"bad config key", `{"packages":[{"package":` + p1 + `,"config":{"log-level":"x"}}]}`, `config key "log-level"`},
		{"bad policy", `{"packages":[{"package":` + p1 + `,"on_failure":"panic"}]}`, `on_failure "panic"`},
		{"trailing data", `{"packages":[]} {}`, `trailing data`},
		{"negative revision", `{"revision":-1,"packages":[]}`, `negative revision`},
		{"not json", `hello`, `invalid manifest`},
		{"legacy with object", `[{"package":` + p1 + `,"x":1}]`, `unknown field "x"`},
		{"missing package", `{"packages":[{"env":"x"}]}`, `packages[0]: invalid package name ""`},
		// Only an explicit empty list removes everything.
		{"null", `null`, `not a JSON object with a "packages" list`},
		{"empty object", `{}`, `no "packages" list`},
		{"revision only", `{"revision":9}`, `no "packages" list`},
		{"packages null", `{"packages":null}`, `no "packages" list`},
		{"empty file", ``, `empty file`},
		{"blank file", " \n", `empty file`},
		{"string", `"hello"`, `not a JSON object`},
		{"number", `42`, `not a JSON object`},
		{"truncated", `{"revision":3,"packages":[` + p1, `invalid manifest`},
		{"legacy null", `[null]`, `packages[0]`},
		{"duplicate revision", `{"revision":1,"revision":2,"packages":[]}`, `duplicate key "revision"`},
		{"duplicate packages", `{"packages":[` + p1 + `],"packages":[]}`, `duplicate key "packages"`},
		{"duplicate entry key", `{"packages":[{"package":` + p1 + `,"env":"a","env":"b"}]}`, `duplicate key "env"`},
		{"duplicate config key", `{"packages":[{"package":` + p1 + `,"config":{"A":"1","A":"2"}}]}`, `duplicate key "A"`},
		{"config value too large", `{"packages":[{"package":` + p1 + `,"config":{"BIG":"` + strings.Repeat("x", MaxConfigValue+1) + `"}}]}`, `config value BIG is 32769 bytes, more than 32768`},
		{"config too large in all", `{"packages":[{"package":` + p1 + `,"config":{` + manyValues(9) + `}}]}`, `more than 262144 (the scripts' environment`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", m)
			}
			if !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse error %q, want it to contain %q and wrap ErrInvalidManifest", err, tt.want)
			}
		})
	}
}

// TestParseEmpty: the two explicit empty lists parse as a manifest with no
// packages, and keys repeated in different objects are not duplicates.
func TestParseEmpty(t *testing.T) {
	for _, in := range []string{`{"packages": []}`, `[]`, ` [ ] `, `{"revision": 4, "packages": []}`} {
		m, err := Parse([]byte(in))
		if err != nil || len(m.Packages) != 0 {
			t.Errorf("Parse(%q) = %+v, %v; want no packages", in, m, err)
		}
	}
	two := `{"packages":[{"package":"hello/hello-20261122T101500Z-0123456789ab.tar.zst","config":{"A":"1"}},` +
		`{"package":"api/api-20261122T101500Z-0123456789ab.tar.zst","config":{"A":"2"}}]}`
	if m, err := Parse([]byte(two)); err != nil || len(m.Packages) != 2 {
		t.Errorf("Parse of two entries with the same config key = %+v, %v", m, err)
	}
}

// TestGolden parses each testdata/golden/*.in.json and compares the
// canonical encoding with the matching .golden.json; the canonical bytes
// must be a fixed point.
func TestGolden(t *testing.T) {
	ins, _ := filepath.Glob("testdata/golden/*.in.json")
	if len(ins) == 0 {
		t.Fatal("no golden inputs")
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			got := m.Marshal()
			golden := strings.TrimSuffix(in, ".in.json") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("canonical form of %s:\n%s\nwant:\n%s", in, got, want)
			}
			again, err := Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Marshal(), got) {
				t.Fatal("canonical form is not a fixed point")
			}
		})
	}
}

func TestEdit(t *testing.T) {
	m, err := Parse([]byte(`{"revision":3,"packages":[
		{"package":"hello/hello-20261122T101500Z-0123456789ab.tar.zst","env":"hello-a","config":{"A":"1"}},
		{"package":"hello/hello-20261122T101500Z-0123456789ab.tar.zst","env":"hello-b"},
		"api/api-20261122T101500Z-0123456789ab.tar.zst"]}`))
	if err != nil {
		t.Fatal(err)
	}
	orig := m.Clone()
	v2, _ := ParsePackageName("hello/hello-20261123T101500Z-ba9876543210.tar.zst")
	if !m.SetPackage(v2) || m.SetPackage(v2) {
		t.Fatal("SetPackage reported the wrong change")
	}
	for _, env := range []string{"hello-a", "hello-b"} {
		if e, ok := m.Lookup(env); !ok || e.Package.String() != v2.String() {
			t.Fatalf("env %s not moved to v2: %+v", env, e)
		}
	}
	if e, _ := m.Lookup("hello-a"); e.Config["A"] != "1" {
		t.Fatal("SetPackage dropped config")
	}
	if e, _ := orig.Lookup("hello-a"); e.Package.String() == v2.String() {
		t.Fatal("Clone shares entries with the original")
	}
	web, _ := ParsePackageName("web/web-20261123T101500Z-ba9876543210.tar.zst")
	m.SetPackage(web)
	if got := strings.Join(m.Apps(), ","); got != "hello,api,web" {
		t.Fatalf("Apps = %s", got)
	}
	if !m.RemoveApp("hello") || m.RemoveApp("hello") {
		t.Fatal("RemoveApp reported the wrong change")
	}
	if got := strings.Join(m.Apps(), ","); got != "api,web" {
		t.Fatalf("after RemoveApp, Apps = %s", got)
	}
}

func TestPackageMeta(t *testing.T) {
	m := PackageMeta{App: "hello", Commit: strings.Repeat("ab", 20), Branch: "main", Repo: "https://git.example/hello", Built: time.Date(2026, 11, 22, 10, 15, 0, 0, time.UTC), User: "ci", Host: "build-1", Dirty: true, Note: "first", SHA256: strings.Repeat("0f", 32), Format: FormatGzip, Size: 12345}
	got, err := ParsePackageMeta(m.Map())
	if err != nil || got != m {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for key, val := range map[string]string{MetaSHA256: "", MetaBuilt: "yesterday", MetaDirty: "maybe", MetaFormat: "zip", MetaSize: "-1"} {
		md := m.Map()
		md[key] = val
		if _, err := ParsePackageMeta(md); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s=%q: error %v, want one naming %s", key, val, err, key)
		}
	}
}

func TestPushConfig(t *testing.T) {
	c, err := ParsePushConfig([]byte(`{"servers": {"web-1": ["hello", "api"], "web-2": ["hello"]}, "groups": {"web": ["hello", "db"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Allowed(Server("web-1"), "api") || c.Allowed(Server("web-2"), "api") || c.Allowed(Server("nope"), "hello") {
		t.Fatal("Allowed is wrong for servers")
	}
	if !c.Allowed(Group("web"), "db") || c.Allowed(Group("web"), "api") || c.Allowed(Server("web"), "db") || c.Allowed(Group("web-1"), "hello") {
		t.Fatal("Allowed is wrong for groups")
	}
	if !c.Lists(Group("web")) || c.Lists(Group("web-1")) || !c.Lists(Server("web-1")) {
		t.Fatal("Lists is wrong")
	}
	if got := strings.Join(c.ServerNames(), ","); got != "web-1,web-2" {
		t.Fatalf("ServerNames = %s", got)
	}
	for _, bad := range []string{
		`{"servers": {"../x": []}}`,
		`{"servers": {"a": ["Bad App"]}}`,
		`{"servers": {"a": []}, "groups": {"g": ["a"]}}`, // the old meaning: member servers
		`{"servers": {"a": []}, "groups": {"g": ["Bad App"]}}`,
		`{"servers": {}, "extra": 1}`,
		`null`,
		`[]`,
		``,
		`{"servers": {"a": []}, "servers": {}}`,
		`{"servers": {"a": ["hello"], "a": []}}`,
		`{}`,
		`{"servers": null}`,
		`{"groups": {}}`,
	} {
		if _, err := ParsePushConfig([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func TestStatus(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	s := &Status{Server: "web-1", Time: now, PollSeconds: 60, Envs: []EnvStatus{{Env: "hello", State: StateFailed, Output: "boom"}}}
	got, err := ParseStatus(s.Marshal())
	if err != nil || !bytes.Equal(got.Marshal(), s.Marshal()) {
		t.Fatalf("round trip: %v", err)
	}
	if e, ok := got.Lookup("hello"); !ok || e.Output != "boom" {
		t.Fatal("Lookup lost the env")
	}
	if s.Stale(now.Add(179*time.Second)) || !s.Stale(now.Add(181*time.Second)) {
		t.Fatal("Stale is not three poll periods")
	}
	for _, bad := range []string{`null`, `[]`, ``, `{"server":"a","server":"b"}`, `{"envs":[{"env":"a","state":"SERVING","state":"FAILED"}]}`} {
		if _, err := ParseStatus([]byte(bad)); err == nil {
			t.Errorf("ParseStatus accepted %q", bad)
		}
	}
	if _, err := ParseStatus([]byte(`{"server":"web-1","from_the_future":1}`)); err != nil {
		t.Errorf("ParseStatus refused an unknown field: %v", err)
	}
}

func TestAuditRecord(t *testing.T) {
	after, _ := Parse([]byte(`["hello/hello-20261122T101500Z-0123456789ab.tar.zst"]`))
	r := &AuditRecord{Time: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), User: "ann", Server: "web-1", Action: "set hello", After: after}
	got, err := ParseAuditRecord(r.Marshal())
	if err != nil || got.Before != nil || got.After == nil || !bytes.Equal(got.Marshal(), r.Marshal()) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
}

// TestConfigKeys: keys are [A-Za-z_][A-Za-z0-9_]*, case-sensitive, as
// Teletraan's templates spell them; anything that is not a shell variable
// name is refused.
func TestConfigKeys(t *testing.T) {
	for _, k := range []string{"LOG_LEVEL", "log_level", "Who", "_x1", "a"} {
		if err := CheckConfigKey(k); err != nil {
			t.Errorf("CheckConfigKey(%q) = %v", k, err)
		}
	}
	for _, k := range []string{"", "1a", "log-level", "Wh-O", "a b", "é"} {
		if err := CheckConfigKey(k); err == nil {
			t.Errorf("CheckConfigKey(%q) accepted", k)
		}
	}
}

// manyValues returns n config pairs of 30 KiB each, as JSON object members.
func manyValues(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"K%d":"%s"`, i, strings.Repeat("v", 30<<10))
	}
	return b.String()
}
