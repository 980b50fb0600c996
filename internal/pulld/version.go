package pulld

import (
	"runtime/debug"
	"sync"
)

// Version is pulld's version as reported in status and /metrics. Release
// builds set it with -ldflags "-X github.com/pushpull/pushpull/internal/pulld.Version=v1.2.3";
// otherwise it is derived from the binary's build information (module
// version, or VCS revision with "+dirty"), and "devel" when there is none.
var Version = ""

var versionOnce = sync.OnceValue(func() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return "devel-" + rev + dirty
})

// VersionString returns the version pulld reports: Version, or one derived
// from the build information.
func VersionString() string { return versionOnce() }

func version() string { return versionOnce() }
