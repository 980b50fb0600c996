// Package skia is the one home of Skia push's bucket format, which
// release -import-skia reads (docs/skia.md): where Skia keeps its packages
// and server lists, its package names, its object metadata keys, and the
// pushpull name each of its packages gets.
package skia

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/pushpull/pushpull/manifest"
)

// The layout of a Skia push bucket.
const (
	// DebsPrefix holds the packages: debs/{app}/{Name}.
	DebsPrefix = "debs/"
	// ServersPrefix holds server/{host}.json, the names of the packages
	// each host runs (ParseServer).
	ServersPrefix = "server/"
)

// The object metadata keys Skia's release tooling stored on every .deb.
const (
	MetaAppName  = "appname"
	MetaUserID   = "userid" // user@host
	MetaHash     = "hash"   // the full commit
	MetaDateTime = "datetime"
	MetaDirty    = "dirty"
	MetaNote     = "note"
	MetaServices = "services" // the systemd services the package restarts
)

// userRE is what the user and the host of a name may be.
var userRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)

// ErrName is wrapped by the error for a name that is not a Skia push
// package name.
var ErrName = errors.New("not a Skia push package name")

// Package is what a Skia push package name says.
type Package struct {
	App, User, Host string
	Built           time.Time // UTC
	Commit          string    // lowercase hex, as long as Skia gave it (12 to 64 digits)
}

// ParseName parses a Skia push package name as server/{host}.json lists it:
// {app}/{app}:{user}@{host}:{RFC 3339 time}:{commit}.deb.
func ParseName(s string) (Package, error) {
	bad := func(why string) (Package, error) {
		return Package{}, fmt.Errorf("%w %q: %s", ErrName, s, why)
	}
	app, file, ok := strings.Cut(s, "/")
	if !ok {
		return bad("want {app}/{app}:{user}@{host}:{time}:{commit}.deb")
	}
	if err := manifest.CheckName("app", app); err != nil {
		return bad(err.Error())
	}
	rest, ok := strings.CutPrefix(file, app+":")
	if !ok {
		return bad("file name does not start with " + app + ":")
	}
	rest, ok = strings.CutSuffix(rest, ".deb")
	if !ok {
		return bad("not a .deb")
	}
	userHost, rest, ok1 := strings.Cut(rest, ":")
	i := strings.LastIndexByte(rest, ':')
	if !ok1 || i < 0 {
		return bad("want {user}@{host}:{time}:{commit}")
	}
	when, commit := rest[:i], rest[i+1:]
	p := Package{App: app, Commit: strings.ToLower(commit)}
	p.User, p.Host, _ = strings.Cut(userHost, "@")
	if !userRE.MatchString(p.User) || !userRE.MatchString(p.Host) {
		return bad(fmt.Sprintf("%q is not {user}@{host}", userHost))
	}
	t, err := time.Parse(time.RFC3339, when)
	if err != nil {
		return bad(fmt.Sprintf("time %q is not RFC 3339", when))
	}
	p.Built = t.UTC()
	if err := manifest.CheckCommit(p.Commit); err != nil {
		return bad(err.Error())
	}
	return p, nil
}

// PackageName is the pushpull name of p:
// {app}/{app}-{time}-{commit, 12}[-dirty].deb.
func (p Package) PackageName(dirty bool) (manifest.PackageName, error) {
	return manifest.NewPackageName(p.App, p.Built, p.Commit, dirty, manifest.FormatDeb)
}

// ParseServer parses server/{host}.json: a JSON list of package names, or
// an object with that list under "Names". The names are not checked: Skia
// lists "app/" for an app with no version chosen.
func ParseServer(data []byte) ([]string, error) {
	var names []string
	if err := json.Unmarshal(data, &names); err == nil && names != nil {
		return names, nil
	}
	var obj struct{ Names []string }
	if err := json.Unmarshal(data, &obj); err != nil || obj.Names == nil {
		return nil, errors.New(`not a JSON list of package names (["app/app:user@host:time:commit.deb", …])`)
	}
	return obj.Names, nil
}
