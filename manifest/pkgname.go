package manifest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrInvalidPackage is wrapped by every error about a malformed package name.
var ErrInvalidPackage = errors.New("invalid package name")

// Format is a package's archive format, which is also its file extension.
type Format string

// The archive formats a package can have.
const (
	FormatZstd Format = "tar.zst" // tar, zstd-compressed (the default)
	FormatGzip Format = "tar.gz"  // tar, gzip-compressed
	FormatDeb  Format = "deb"     // a Debian package, installed with dpkg (pkgformat.WriteDeb)
)

// formats lists the formats, the default first.
var formats = []Format{FormatZstd, FormatGzip, FormatDeb}

// ParseFormat returns the Format named s.
func ParseFormat(s string) (Format, error) {
	for _, f := range formats {
		if Format(s) == f {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown package format %q (want %s, %s or %s)", s, FormatZstd, FormatGzip, FormatDeb)
}

// Formats returns the package formats, the default first.
func Formats() []Format { return slices.Clone(formats) }

// IsArchive reports whether f is a tar archive pulld unpacks, rather than
// a Debian package it installs with dpkg.
func (f Format) IsArchive() bool { return f == FormatZstd || f == FormatGzip }

// BuildTimeLayout is the layout of the build time inside a package name.
const BuildTimeLayout = "20060102T150405Z"

// CommitLen is the number of hex digits of the commit in a package name.
const CommitLen = 12

// PackageName identifies one immutable package, as manifests list it:
//
//	{app}/{app}-{UTC yyyymmddThhmmssZ}-{commit, 12 hex}[-dirty].{format}
//
// Names sort by build time within an app. The zero value is not a valid name.
type PackageName struct {
	App    string
	Built  time.Time // UTC, whole seconds
	Commit string    // 12 lowercase hex digits
	Dirty  bool      // built from a tree with uncommitted changes
	Format Format
}

// NewPackageName returns the name of a package of app built at built from
// commit (at least 12 hex digits; only the first 12 are kept).
func NewPackageName(app string, built time.Time, commit string, dirty bool, format Format) (PackageName, error) {
	if err := CheckName("app", app); err != nil {
		return PackageName{}, err
	}
	commit = strings.ToLower(commit)
	if len(commit) < CommitLen || !isHex(commit) {
		return PackageName{}, fmt.Errorf("%w: commit %q is not at least %d hex digits", ErrInvalidPackage, commit, CommitLen)
	}
	if _, err := ParseFormat(string(format)); err != nil {
		return PackageName{}, fmt.Errorf("%w: %v", ErrInvalidPackage, err)
	}
	return PackageName{App: app, Built: built.UTC().Truncate(time.Second), Commit: commit[:CommitLen], Dirty: dirty, Format: format}, nil
}

// ParsePackageName parses a package name as manifests list it. Anything that
// String would not produce exactly is refused.
func ParsePackageName(s string) (PackageName, error) {
	bad := func(why string) (PackageName, error) {
		return PackageName{}, fmt.Errorf("%w %q: %s", ErrInvalidPackage, s, why)
	}
	app, file, ok := strings.Cut(s, "/")
	if !ok {
		return bad("want {app}/{app}-{time}-{commit}.tar.zst")
	}
	if err := CheckName("app", app); err != nil {
		return bad(err.Error())
	}
	var p PackageName
	p.App = app
	rest, ok := strings.CutPrefix(file, app+"-")
	if !ok {
		if strings.HasPrefix(file, app+":") {
			return bad("a Skia push name: import the bucket with release -import-skia, which names it {app}/{app}-{time}-{commit}.deb")
		}
		return bad("file name does not start with " + app + "-")
	}
	for _, f := range formats {
		if strings.HasSuffix(rest, "."+string(f)) {
			p.Format = f
			break
		}
	}
	if p.Format == "" {
		return bad("extension is not ." + string(FormatZstd) + ", ." + string(FormatGzip) + " or ." + string(FormatDeb))
	}
	rest = strings.TrimSuffix(rest, "."+string(p.Format))
	if r, ok := strings.CutSuffix(rest, "-dirty"); ok {
		p.Dirty, rest = true, r
	}
	ts, commit, ok := strings.Cut(rest, "-")
	if !ok {
		return bad("missing commit")
	}
	t, err := time.Parse(BuildTimeLayout, ts)
	if err != nil || len(ts) != len(BuildTimeLayout) {
		return bad(fmt.Sprintf("build time %q is not yyyymmddThhmmssZ", ts))
	}
	p.Built = t.UTC()
	if len(commit) != CommitLen || !isHex(commit) || strings.ToLower(commit) != commit {
		return bad(fmt.Sprintf("commit %q is not %d lowercase hex digits", commit, CommitLen))
	}
	p.Commit = commit
	return p, nil
}

// String returns the name as manifests list it: {app}/{file}.
func (p PackageName) String() string {
	if p.App == "" {
		return ""
	}
	return p.App + "/" + p.File()
}

// File returns the package's file name, without the app directory.
func (p PackageName) File() string {
	return p.ID() + "." + string(p.Format)
}

// ID returns the file name without its extension. It is unique per package
// and safe as a directory name: pulld unpacks builds into builds/{ID}.
func (p PackageName) ID() string {
	s := p.App + "-" + p.Built.UTC().Format(BuildTimeLayout) + "-" + p.Commit
	if p.Dirty {
		s += "-dirty"
	}
	return s
}

// IsZero reports whether p is the zero PackageName.
func (p PackageName) IsZero() bool { return p.App == "" }

// Compare orders package names by app, then build time, then the rest of
// the name; it returns -1, 0 or +1 like strings.Compare.
func (p PackageName) Compare(q PackageName) int {
	if c := strings.Compare(p.App, q.App); c != 0 {
		return c
	}
	if c := p.Built.Compare(q.Built); c != 0 {
		return c
	}
	return strings.Compare(p.String(), q.String())
}

// MarshalText implements encoding.TextMarshaler.
func (p PackageName) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParsePackageName;
// the empty string, which MarshalText writes for the zero PackageName, is
// the zero PackageName.
func (p *PackageName) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*p = PackageName{}
		return nil
	}
	q, err := ParsePackageName(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// MaxCommitLen is the most hex digits a commit may have (a SHA-256 object
// name).
const MaxCommitLen = 64

// CheckCommit reports why s is not a commit as packages record it: CommitLen
// to MaxCommitLen lowercase hex digits.
func CheckCommit(s string) error {
	if len(s) < CommitLen || len(s) > MaxCommitLen || !isHex(s) || strings.ToLower(s) != s {
		return fmt.Errorf("commit %q is not %d to %d lowercase hex digits", s, CommitLen, MaxCommitLen)
	}
	return nil
}

func isHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return s != ""
}
