package release

import (
	"strings"
	"testing"
	"time"
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

	out.Reset()
	cfg.App = "nothing"
	if _, err := Run(t.Context(), cfg); err != nil || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("empty app: %v, %q", err, out.String())
	}
}
