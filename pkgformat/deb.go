package pkgformat

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"

	"github.com/pushpull/pushpull/manifest"
)

// A Debian package (manifest.FormatDeb) is built from a tree that is its
// file system image: opt/app/bin installs as /opt/app/bin. The tree's
// top-level DebianDir is not installed; it holds the maintainer scripts
// (DebScripts) and an optional ControlFile of control fields. Every regular
// file under etc/ is a conffile, as debhelper makes them. pulld keeps the
// .deb itself, as DebFile in the build's directory, and installs it with
// dpkg: its RESTARTING step is dpkg -i and its STOPPING step dpkg -r; the
// other steps have nothing to run.
const (
	DebianDir   = "debian"
	ControlFile = "control"
	// DebFile is the name of the .deb inside a build's directory on a host.
	DebFile = "package.deb"
)

// debScripts are the maintainer scripts a tree's DebianDir may hold.
var debScripts = []string{"preinst", "postinst", "prerm", "postrm"}

// ErrInvalidControl is wrapped by every error about a malformed
// debian/control.
var ErrInvalidControl = errors.New("invalid control file")

// DebControl is what a tree's debian/control may set. Version is not among
// it: release sets it from the build time (DebVersion), so that versions
// sort as builds do.
type DebControl struct {
	Package, Architecture, Maintainer, Description string
	Section, Priority, Homepage                    string
	Depends, PreDepends, Recommends, Suggests      []string
	Conflicts, Breaks, Replaces, Provides          []string
}

// debNameRE is Debian's rule for package names.
var debNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)

// ParseControl parses a debian/control paragraph: "Field: value" lines,
// continuation lines starting with a space or a tab. Field names are
// matched without regard to case; a field given twice, one not in
// DebControl, Version, or a Package that is not a Debian package name is
// refused. Relationship fields are split at commas.
func ParseControl(data []byte) (DebControl, error) {
	var c DebControl
	text := map[string]*string{
		"package": &c.Package, "architecture": &c.Architecture, "maintainer": &c.Maintainer,
		"description": &c.Description, "section": &c.Section, "priority": &c.Priority, "homepage": &c.Homepage,
	}
	lists := map[string]*[]string{
		"depends": &c.Depends, "pre-depends": &c.PreDepends, "recommends": &c.Recommends, "suggests": &c.Suggests,
		"conflicts": &c.Conflicts, "breaks": &c.Breaks, "replaces": &c.Replaces, "provides": &c.Provides,
	}
	bad := func(line int, format string, args ...any) (DebControl, error) {
		return DebControl{}, fmt.Errorf("%w: line %d: %s", ErrInvalidControl, line, fmt.Sprintf(format, args...))
	}
	seen := map[string]bool{}
	var field string // the field continuation lines add to
	values := map[string]*strings.Builder{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<10)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), " \t\r")
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case line[0] == ' ' || line[0] == '\t':
			if field == "" {
				return bad(n, "continuation line before any field")
			}
			v := strings.TrimSpace(line)
			if v == "." {
				v = ""
			}
			values[field].WriteString("\n" + v)
			continue
		}
		if strings.ContainsFunc(line, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			return bad(n, "control character in %q", line)
		}
		name, value, ok := strings.Cut(line, ":")
		key := strings.ToLower(strings.TrimSpace(name))
		switch {
		case !ok || key == "" || strings.ContainsAny(key, " \t"):
			return bad(n, "want \"Field: value\", got %q", line)
		case key == "version":
			return bad(n, "Version is set by release from the build time; remove it")
		case text[key] == nil && lists[key] == nil:
			return bad(n, "unknown field %q", name)
		case seen[key]:
			return bad(n, "field %s given twice", name)
		}
		seen[key], field = true, key
		values[key] = &strings.Builder{}
		values[key].WriteString(strings.TrimSpace(value))
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return bad(n+1, "longer than 64 KiB")
		}
		return bad(n+1, "%v", err)
	}
	for key, b := range values {
		v := b.String()
		if p := text[key]; p != nil {
			*p = v
			continue
		}
		for _, part := range strings.Split(strings.ReplaceAll(v, "\n", " "), ",") {
			if part = strings.TrimSpace(part); part != "" {
				*lists[key] = append(*lists[key], part)
			}
		}
	}
	if strings.Contains(c.Package, "\n") || c.Package != "" && !debNameRE.MatchString(c.Package) {
		return DebControl{}, fmt.Errorf("%w: Package %q is not a Debian package name (lowercase letters, digits, + - and ., at least two)", ErrInvalidControl, c.Package)
	}
	for key, p := range text {
		if key != "description" && strings.Contains(*p, "\n") {
			return DebControl{}, fmt.Errorf("%w: field %s spans lines", ErrInvalidControl, key)
		}
	}
	return c, nil
}

// DebVersion is the Debian version of the package named p: its build time,
// then its commit, "20261201.182200+7e0ff6059e65" (".dirty" after a dirty
// tree's), so that dpkg orders an app's versions as their builds.
func DebVersion(p manifest.PackageName) string {
	v := p.Built.UTC().Format("20060102.150405") + "+" + p.Commit
	if p.Dirty {
		v += ".dirty"
	}
	return v
}

// debPackageName is the Debian package name a tree of app gets when its
// control file names none: app, with underscores as hyphens.
func debPackageName(app string) string { return strings.ReplaceAll(app, "_", "-") }

// isDebian reports whether the slash-separated path rel is under the
// tree's DebianDir, which a .deb does not install.
func isDebian(rel string) bool { return rel == DebianDir || strings.HasPrefix(rel, DebianDir+"/") }

// WriteDeb writes t as the Debian package named p to w: every entry
// outside DebianDir installed at /{its path}, owned by root, its mode
// without group and other write or setuid, setgid and sticky (as pulld
// installs a tar package), every mtime the build time; the maintainer
// scripts and control fields from DebianDir; Version from DebVersion;
// Maintainer defaulting to meta's user@host and Description to its note;
// Architecture to "all". It fails as CheckDeb does. read, when not nil,
// is called with the tree's size once the data is packed.
func (t *Tree) WriteDeb(ctx context.Context, w io.Writer, p manifest.PackageName, meta manifest.PackageMeta, read func(int)) error {
	info, err := t.debInfo(p, meta)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := deb.Default.Package(info, w); err != nil {
		return fmt.Errorf("deb: %w", err)
	}
	if read != nil {
		read(int(t.Size))
	}
	return nil
}

// CheckDeb reports, in an error wrapping ErrInvalidTree, why t cannot be
// the Debian package of app: a teletraan/ directory (a .deb's steps are
// its maintainer scripts), an unknown file under DebianDir, a maintainer
// script that is not an executable file, an invalid control file, or no
// valid Debian package name.
func (t *Tree) CheckDeb(app string) error {
	_, err := t.debInfo(manifest.PackageName{App: app, Format: manifest.FormatDeb}, manifest.PackageMeta{})
	return err
}

// debInfo is what nfpm needs to pack t as p.
func (t *Tree) debInfo(p manifest.PackageName, meta manifest.PackageMeta) (*nfpm.Info, error) {
	if t.HasScripts {
		return nil, fmt.Errorf("%w: %s/: a .deb's deploy steps are its maintainer scripts under %s/ (%s)", ErrInvalidTree, ScriptDir, DebianDir, strings.Join(debScripts, ", "))
	}
	info := &nfpm.Info{
		Name:          debPackageName(p.App),
		Arch:          "all",
		Platform:      "linux",
		Version:       DebVersion(p),
		VersionSchema: "none",
		Maintainer:    meta.User + "@" + meta.Host,
		Description:   meta.Note,
		Section:       "misc",
		Priority:      "optional",
		MTime:         meta.Built,
	}
	// gzip at its usual level: every dpkg reads it (zstd needs dpkg
	// 1.21.18), and nfpm's default, 9, takes twice as long for little.
	info.Deb.Compression = "gzip:6"
	if info.Description == "" {
		info.Description = p.App + " built from " + p.Commit
	}
	var problems []error
	for _, e := range t.entries {
		src := filepath.Join(t.root, filepath.FromSlash(e.rel))
		if e.rel == "DEBIAN" {
			problems = append(problems, fmt.Errorf("DEBIAN/: dpkg-deb's control directory; release takes the maintainer scripts and control file from %s/", DebianDir))
			continue
		}
		if strings.ContainsFunc(e.rel, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			problems = append(problems, fmt.Errorf("%q: a control character in a path, which dpkg refuses", e.rel))
			continue
		}
		if isDebian(e.rel) {
			if err := t.debianEntry(info, e, src); err != nil {
				problems = append(problems, err)
			}
			continue
		}
		c := &files.Content{
			Source:      src,
			Destination: "/" + e.rel,
			FileInfo:    &files.ContentFileInfo{Owner: "root", Group: "root", Mode: e.info.Mode().Perm() &^ notWritable, MTime: meta.Built},
		}
		switch m := e.info.Mode(); {
		case m.IsDir():
			c.Type, c.Source = files.TypeDir, ""
		case m&fs.ModeSymlink != 0:
			c.Type, c.Source, c.FileInfo.Mode = files.TypeSymlink, e.link, 0
		case strings.HasPrefix(e.rel, "etc/"):
			c.Type = files.TypeConfig
		}
		info.Contents = append(info.Contents, c)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidTree, errors.Join(problems...))
	}
	if !debNameRE.MatchString(info.Name) {
		return nil, fmt.Errorf("%w: app %q is not a Debian package name: give one as Package in %s/%s", ErrInvalidTree, p.App, DebianDir, ControlFile)
	}
	return info, nil
}

// debianEntry adds one entry of the tree's DebianDir to info.
func (t *Tree) debianEntry(info *nfpm.Info, e entry, src string) error {
	name := strings.TrimPrefix(e.rel, DebianDir+"/")
	switch {
	case e.rel == DebianDir:
		if !e.info.IsDir() {
			return fmt.Errorf("%s: not a directory", e.rel)
		}
		return nil
	case name == ControlFile:
		if !e.info.Mode().IsRegular() {
			return fmt.Errorf("%s: not a regular file", e.rel)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		c, err := ParseControl(data)
		if err != nil {
			return fmt.Errorf("%s: %w", e.rel, err)
		}
		set := func(dst *string, v string) {
			if v != "" {
				*dst = v
			}
		}
		set(&info.Name, c.Package)
		set(&info.Arch, c.Architecture)
		set(&info.Maintainer, c.Maintainer)
		set(&info.Description, c.Description)
		set(&info.Section, c.Section)
		set(&info.Priority, c.Priority)
		set(&info.Homepage, c.Homepage)
		info.Depends, info.Deb.Predepends, info.Recommends, info.Suggests = c.Depends, c.PreDepends, c.Recommends, c.Suggests
		info.Conflicts, info.Deb.Breaks, info.Replaces, info.Provides = c.Conflicts, c.Breaks, c.Replaces, c.Provides
		return nil
	case slices.Contains(debScripts, name):
		if m := e.info.Mode(); !m.IsRegular() || m.Perm()&0o100 == 0 {
			return fmt.Errorf("%s: a maintainer script must be an executable file (chmod +x)", e.rel)
		}
		switch name {
		case "preinst":
			info.Scripts.PreInstall = src
		case "postinst":
			info.Scripts.PostInstall = src
		case "prerm":
			info.Scripts.PreRemove = src
		case "postrm":
			info.Scripts.PostRemove = src
		}
		return nil
	}
	return fmt.Errorf("%s: unknown file in %s/ (it holds %s and %s)", e.rel, DebianDir, ControlFile, strings.Join(debScripts, ", "))
}
