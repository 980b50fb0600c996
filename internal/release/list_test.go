package release

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/internal/cli"
)

// TestList checks that List prints an app's packages newest first, with
// commit, built, user, dirty and note, one line each.
func TestList(t *testing.T) {
	bucket := "file://" + t.TempDir()
	dir := appTree(t)
	for i, note := range []string{"first", "second\nline", "third"} {
		cfg := testConfig(bucket, "hello", dir)
		cfg.Now = func() time.Time { return fixedNow.Add(time.Duration(i) * time.Minute) }
		cfg.Note = note
		cfg.User = []string{"alice", "bob", "carol"}[i]
		if _, err := Run(t.Context(), cfg); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	cfg := Config{Bucket: bucket, App: "hello", List: true, Out: &out}
	if _, err := Run(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	want := `PACKAGE                                            BUILT                COMMIT        USER   DIRTY  NOTE
hello/hello-20261122T101700Z-0123456789ab.tar.zst  2026-11-22 10:17:00  0123456789ab  carol  -      third
hello/hello-20261122T101600Z-0123456789ab.tar.zst  2026-11-22 10:16:00  0123456789ab  bob    -      second line
hello/hello-20261122T101500Z-0123456789ab.tar.zst  2026-11-22 10:15:00  0123456789ab  alice  -      first
`
	if out.String() != want {
		t.Errorf("List printed\n%s\nwant\n%s", out.String(), want)
	}
}

// TestListNoPackages: listing an app the bucket has no packages of (a
// typo) prints nothing and is ErrNoPackages, one line naming the apps the
// bucket has, or saying it has none.
func TestListNoPackages(t *testing.T) {
	full := "file://" + t.TempDir()
	for _, app := range []string{"hello", "api"} {
		if _, err := Run(t.Context(), testConfig(full, app, appTree(t))); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, bucket, app, want string
	}{
		{"typo", full, "helo", `release: no packages of app "helo" in the bucket; it has: api, hello`},
		{"empty bucket", "file://" + t.TempDir(), "hello", `release: no packages of app "hello" in the bucket; it has no packages at all`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			_, err := Run(t.Context(), Config{Bucket: tc.bucket, App: tc.app, List: true, Out: &out})
			if !errors.Is(err, ErrNoPackages) || err.Error() != tc.want {
				t.Errorf("Run = %v\nwant %s (ErrNoPackages)", err, tc.want)
			}
			if errors.Is(err, cli.ErrUsage) {
				t.Errorf("Run = %v, a usage error (exit status 2); want a failure (1)", err)
			}
			if out.Len() > 0 {
				t.Errorf("stdout %q, want nothing", out.String())
			}
		})
	}
}
