package api

import (
	"strings"
	"testing"

	"github.com/pushpull/pushpull/blobstore"
)

// FuzzPrecondition: If-Match never matches an absent manifest, always
// matches its own ETag, and a mismatched strong tag never matches.
func FuzzPrecondition(f *testing.F) {
	f.Add(`"abc"`, "abc")
	f.Add(`W/"abc", "def"`, `"def"`)
	f.Add("*", "g42")
	f.Fuzz(func(t *testing.T, ifMatch, version string) {
		if preconditionHolds(ifMatch, "", "") {
			t.Fatalf("If-Match %q matched an absent manifest", ifMatch)
		}
		v := blobstore.Version(version)
		if strings.Trim(version, `"`) != "" && !strings.ContainsAny(version, ",") && !preconditionHolds(etag(v), "", v) {
			t.Fatalf("ETag %s does not match its own version %q", etag(v), version)
		}
		if preconditionHolds(ifMatch, "", v) && !strings.Contains(ifMatch, "*") && !strings.Contains(ifMatch, strings.Trim(version, `"`)) {
			t.Fatalf("If-Match %q matched version %q", ifMatch, version)
		}
	})
}
