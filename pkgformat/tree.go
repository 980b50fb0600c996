package pkgformat

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pushpull/pushpull/manifest"
)

// entry is one file, directory or link of the tree, in archive order.
type entry struct {
	rel  string      // slash-separated path relative to the root; directories without a trailing slash
	info fs.FileInfo // from Lstat
	link string      // symlink target
}

// ErrInvalidTree is wrapped by WalkTree's error when the tree breaks the
// format's rules; the error lists every problem found.
var ErrInvalidTree = errors.New("invalid build tree")

// ErrNotDir is wrapped by WalkTree's error when the root is not a
// directory that can be read.
var ErrNotDir = errors.New("not a build directory")

// Tree is a walked build directory, ready to be written as a package.
type Tree struct {
	root    string
	entries []entry
	// Size is the bytes of its regular files: what the package unpacks to.
	Size int64
	// Files counts its regular files.
	Files int
	// HasScripts reports whether it has a teletraan/ directory.
	HasScripts bool
	// Writable lists the files and directories writable by group or
	// others; pulld installs them without those bits.
	Writable []string
}

// WalkTree lists the tree under root in archive order (depth first, the
// entries of each directory in byte order of their names), reading only
// metadata, and validates it against the format: the scripts' names and
// modes, file types, links that stay inside. Every problem found is
// reported, joined, in an error wrapping ErrInvalidTree.
func WalkTree(root string) (*Tree, error) {
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotDir, err)
	}
	st, err := os.Stat(real)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotDir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrNotDir, root)
	}
	t := &Tree{root: real}
	var problems []error
	bad := func(rel, format string, args ...any) {
		problems = append(problems, fmt.Errorf("%s: %s", rel, fmt.Sprintf(format, args...)))
	}
	err = filepath.WalkDir(real, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == real {
			return nil
		}
		rel, err := filepath.Rel(real, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.Name() == ".git" {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{rel: rel, info: info}
		if m := info.Mode(); m&fs.ModeSymlink == 0 && m.Perm()&0o022 != 0 {
			t.Writable = append(t.Writable, rel)
		}
		switch m := info.Mode(); {
		case m.IsRegular():
			t.Size += info.Size()
			t.Files++
		case m.IsDir():
		case m&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			e.link = target
			if LinkEscapes(rel, target) || escapesResolved(real, p) {
				bad(rel, "symbolic link to %q leaves the tree (links must be relative and stay inside DIR)", target)
			}
		default:
			bad(rel, "unsupported file type %v (only files, directories and symbolic links are packaged)", m.Type())
			return nil
		}
		t.entries = append(t.entries, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", root, err)
	}
	t.HasScripts, problems = checkScripts(t.entries, problems)
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidTree, errors.Join(problems...))
	}
	return t, nil
}

// escapesResolved reports whether the link at p, resolved on disk through
// every link on the way, ends outside root (a lexically tame target such as
// "self/.." with self -> "." can). Links that do not resolve are judged by
// escapes alone.
func escapesResolved(root, p string) bool {
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		return false
	}
	rel, err := filepath.Rel(root, r)
	return err != nil || Escapes(filepath.ToSlash(rel))
}

// checkScripts validates the entries under teletraan/ (see the package
// documentation) and reports whether teletraan/ exists.
func checkScripts(entries []entry, problems []error) (bool, []error) {
	found := false
	bad := func(rel, format string, args ...any) {
		problems = append(problems, fmt.Errorf("%s: %s", rel, fmt.Sprintf(format, args...)))
	}
	for _, e := range entries {
		if e.rel == ScriptDir {
			found = true
			if !e.info.IsDir() {
				bad(e.rel, "must be a directory of deploy scripts")
			}
			continue
		}
		rest, ok := strings.CutPrefix(e.rel, ScriptDir+"/")
		if !ok {
			continue
		}
		parts := strings.Split(rest, "/")
		if len(parts) == 1 && e.info.IsDir() {
			if err := manifest.CheckName("env", parts[0]); err != nil {
				bad(e.rel, "a directory under %s/ must be named after an env: %v", ScriptDir, err)
			}
			continue
		}
		if len(parts) > 2 || e.info.IsDir() {
			continue // helpers below teletraan/{env}/ are not checked
		}
		if err := CheckScript(parts[len(parts)-1], e.info.Mode()); err != nil {
			bad(e.rel, "%v", err)
		}
	}
	return found, problems
}

// CheckScript checks one file directly in teletraan/ or teletraan/{env}/,
// given its name and mode: a script must be a regular file with the owner's
// execute bit; a name that looks like a script but is not one of Scripts is
// refused, naming the script it was probably meant to be; NAME.tmpl is held
// to the rules of NAME. Other files are allowed.
func CheckScript(name string, mode fs.FileMode) error {
	base := strings.TrimSuffix(name, TemplateSuffix)
	if base == "" {
		return nil
	}
	if IsScript(base) {
		switch {
		case !mode.IsRegular():
			return fmt.Errorf("deploy script must be a regular file, not %s", describeType(mode))
		case mode.Perm()&0o100 == 0:
			return fmt.Errorf("deploy script is not executable (mode %v; chmod +x it)", mode.Perm())
		}
		return nil
	}
	if !looksLikeScript(base) {
		return nil
	}
	msg := fmt.Sprintf("%q is not a deploy script name (want one of %s)", name, strings.Join(Scripts(), ", "))
	if s := closest(base); s != "" {
		msg += fmt.Sprintf("; did you mean %s?", s)
	}
	return errors.New(msg)
}

// looksLikeScript reports whether name is all upper case (letters, digits,
// underscores, starting with a letter) or is a script name in another case
// or with an extension.
func looksLikeScript(name string) bool {
	upper := name != "" && 'A' <= name[0] && name[0] <= 'Z'
	for _, r := range name {
		if !('A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_') {
			upper = false
			break
		}
	}
	if upper {
		return true
	}
	stem, _, _ := strings.Cut(name, ".")
	for _, s := range Scripts() {
		if strings.EqualFold(stem, s) {
			return true
		}
	}
	return false
}

// closest returns the script name nearest to name (ignoring case and any
// extension) within an edit distance of 3, or "".
func closest(name string) string {
	stem, _, _ := strings.Cut(strings.ToUpper(name), ".")
	best, bestD := "", 4
	for _, s := range Scripts() {
		if d := distance(stem, s); d < bestD {
			best, bestD = s, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b, in bytes.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// describeType names the type of a file that is not regular.
func describeType(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsDir():
		return "a directory"
	}
	return "a special file"
}
