package pulld

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/manifest"
)

func TestParseHostInfo(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     manifest.HostInfo
		err      string
	}{
		{"teletraan example", "groups=prod,servicex\nid=i-dcbcee23\nhost=service-x-001\n",
			manifest.HostInfo{Hostname: "service-x-001", ID: "i-dcbcee23", Groups: []string{"prod", "servicex"}}, ""},
		{"compute env type", "host=web-1\ncompute_env_type=STAGING\n",
			manifest.HostInfo{Hostname: "web-1", ComputeEnvType: "STAGING"}, ""},
		{"spaces comments blanks", "# provisioned\n\n host = web-1 \r\ngroups= a , ,b,a \n",
			manifest.HostInfo{Hostname: "web-1", Groups: []string{"a", "b"}}, ""},
		{"unknown keys ignored", "ip=10.0.0.1\nhost=h\n", manifest.HostInfo{Hostname: "h"}, ""},
		{"value with =", "id=a=b\n", manifest.HostInfo{ID: "a=b"}, ""},
		{"last wins", "host=a\nhost=b\n", manifest.HostInfo{Hostname: "b"}, ""},
		{"empty", "", manifest.HostInfo{}, ""},
		{"no equals", "host=a\ngarbage\n", manifest.HostInfo{}, "line 2"},
		{"empty key", "=x\n", manifest.HostInfo{}, "line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseHostInfo([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Hostname != tc.want.Hostname || got.ID != tc.want.ID || !slices.Equal(got.Groups, tc.want.Groups) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestReadHostInfo(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "host_info")
	hi, err := ReadHostInfo(path, "os-name")
	if err != nil || hi.Hostname != "os-name" || hi.ID != "" {
		t.Errorf("missing file: %+v, %v; want the OS hostname only", hi, err)
	}
	hi, err = ReadHostInfo("", "os-name")
	if err != nil || hi.Hostname != "os-name" {
		t.Errorf("no file configured: %+v, %v", hi, err)
	}
	os.WriteFile(path, []byte("id=i-1\ngroups=prod\n"), 0o644)
	hi, err = ReadHostInfo(path, "os-name")
	if err != nil || hi.Hostname != "os-name" || hi.ID != "i-1" || !slices.Equal(hi.Groups, []string{"prod"}) {
		t.Errorf("file without host: %+v, %v", hi, err)
	}
	os.WriteFile(path, []byte("host=teletraan-name\n"), 0o644)
	if hi, _ := ReadHostInfo(path, "os-name"); hi.Hostname != "teletraan-name" {
		t.Errorf("file with host: %+v, want its host", hi)
	}
	if got := DefaultServer(path); got != "teletraan-name" {
		t.Errorf("DefaultServer = %q, want host= of host_info", got)
	}
	os.WriteFile(path, []byte("bad line\n"), 0o644)
	if hi, err := ReadHostInfo(path, "os-name"); err == nil || hi.Hostname != "os-name" {
		t.Errorf("bad file: %+v, %v; want an error and the OS hostname", hi, err)
	}
	os.WriteFile(path, []byte(strings.Repeat("#", maxHostInfo+1)), 0o644)
	if _, err := ReadHostInfo(path, "x"); err == nil {
		t.Error("oversized file accepted")
	}
}

// FuzzParseHostInfo checks that any input either fails or gives groups
// that are non-empty, trimmed and unique.
func FuzzParseHostInfo(f *testing.F) {
	f.Add([]byte("groups=prod,servicex\nid=i-dcbcee23\nhost=service-x-001\n"))
	f.Add([]byte("# c\n\nhost = a \n"))
	f.Add([]byte("groups=,a,,a\n"))
	f.Add([]byte("=\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		hi, err := ParseHostInfo(data)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, g := range hi.Groups {
			if g == "" || g != strings.TrimSpace(g) || strings.Contains(g, ",") || seen[g] {
				t.Fatalf("bad group %q in %q", g, hi.Groups)
			}
			seen[g] = true
		}
		if hi.Hostname != strings.TrimSpace(hi.Hostname) || hi.ID != strings.TrimSpace(hi.ID) {
			t.Fatalf("untrimmed values %+v", hi)
		}
	})
}
