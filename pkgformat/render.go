// Templates: how a build's Teletraan deploy templates are expanded.
//
// Any file under a build's teletraan/ directory whose name ends in ".tmpl"
// is a template. It may reference the env's config values in three forms:
//
//   - `{$TELETRAAN_NAME:default}` and `${TELETRAAN_NAME:default}` (and both
//     without ":default"), pushpull's braced forms: the config value NAME,
//     or else default. A reference with neither a value nor a default is an
//     error, never a silent blank.
//   - `$TELETRAAN_NAME` and `$TELETRAAN_{NAME}`, the bare forms Teletraan's
//     agent substitutes with Python's string.Template.safe_substitute: the
//     config value NAME when it has one, and otherwise left exactly as
//     written. `$TELETRAAN_$TELETRAAN_` is a literal `$TELETRAAN_`.
//
// Grammar. NAME matches [A-Za-z_][A-Za-z0-9_]* and is case-sensitive, as
// config keys are (a config key log_level fills `${TELETRAAN_log_level}`).
// A braced reference starts at the two-character opener `{$` or `${`
// immediately followed by `TELETRAAN_`, continues with NAME, then
// optionally `:` and a default (any bytes other than `}` and newline,
// possibly none), and ends at `}`. Once an opener and `TELETRAAN_` have been
// seen, anything that does not complete this grammar on the same line is an
// error naming the line, so a typo cannot pass through unrendered. A bare
// reference is `$TELETRAAN_` not preceded by `{` and followed by the
// longest NAME, or by `{NAME}`; one that does not complete its grammar is
// copied as it is, as Teletraan's agent does. Everything else, including a
// lone `$` or `{` and shell forms such as `${HOME}`, is copied byte for
// byte. Values and defaults are inserted verbatim and never expanded again
// (Teletraan's agent expands the bare forms inside the values it inserted
// for braced ones; pushpull does not).
//
// The lookup key is NAME, without the TELETRAAN_ prefix: the config key
// LOG_LEVEL in a manifest fills `{$TELETRAAN_LOG_LEVEL:info}`.

package pkgformat

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"
)

// TemplatePrefix starts the variable name of every template reference.
const TemplatePrefix = "TELETRAAN_"

// ErrTemplate is wrapped by every error about a template's contents: a
// reference with no value and no default, or a malformed reference.
var ErrTemplate = errors.New("template error")

// Render expands the template forms of the package doc in src with
// lookup: braced references become lookup("NAME") or else their default (no
// value and no default is an error naming the variable and the line number,
// counted from 1); bare references become lookup("NAME") when it has a
// value and are kept as written otherwise. Everything else is copied byte
// for byte. Render does not modify src. Errors wrap ErrTemplate.
func RenderTemplate(src []byte, lookup func(name string) (string, bool)) ([]byte, error) {
	out, err := render(src, lookup)
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	return out, nil
}

// render is Render with errors that do not start with "render: ".
func render(src []byte, lookup func(name string) (string, bool)) ([]byte, error) {
	var out []byte
	done := 0 // src[:done] has been handled
	line := 1
	lineStart := 0 // bytes before lineStart have had their newlines counted
	emit := func(i, n int, val string) {
		if out == nil {
			out = make([]byte, 0, len(src)+64)
		}
		out = append(out, src[done:i]...)
		out = append(out, val...)
		done = i + n
	}
	for i := 0; i+1 < len(src); i++ {
		braced := (src[i] == '{' && src[i+1] == '$' || src[i] == '$' && src[i+1] == '{') && bytes.HasPrefix(src[i+2:], []byte(TemplatePrefix))
		if !braced {
			if src[i] == '$' && bytes.HasPrefix(src[i+1:], []byte(TemplatePrefix)) {
				if val, n, ok := bare(src[i:], lookup); ok {
					emit(i, n, val)
					i = done - 1
				}
			}
			continue
		}
		line += bytes.Count(src[lineStart:i], []byte{'\n'})
		lineStart = i
		ref, name, def, hasDef, n, err := parseRef(src[i:])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w: %s", line, ErrTemplate, err)
		}
		val, ok := lookup(name)
		if !ok {
			if !hasDef {
				return nil, fmt.Errorf("line %d: %w: %s: config value %s is not set and there is no default", line, ErrTemplate, ref, name)
			}
			val = def
		}
		emit(i, n, val)
		i = done - 1
	}
	if out == nil {
		return bytes.Clone(src), nil
	}
	return append(out, src[done:]...), nil
}

// bareOpener is the start of a bare reference.
const bareOpener = "$" + TemplatePrefix

// bare reads the bare reference at the start of s, which begins with
// bareOpener. It returns what replaces it and its length, and false when
// it stays as written: a name with no value, or no name at all.
func bare(s []byte, lookup func(string) (string, bool)) (string, int, bool) {
	rest := s[len(bareOpener):]
	if bytes.HasPrefix(rest, []byte(bareOpener)) {
		return bareOpener, 2 * len(bareOpener), true // the escaped opener
	}
	braces := len(rest) > 0 && rest[0] == '{'
	if braces {
		rest = rest[1:]
	}
	n := nameLen(rest)
	if n == 0 || braces && (n >= len(rest) || rest[n] != '}') {
		return "", 0, false
	}
	val, ok := lookup(string(rest[:n]))
	if !ok {
		return "", 0, false
	}
	total := len(bareOpener) + n
	if braces {
		total += 2
	}
	return val, total, true
}

// nameLen returns the length of the NAME at the start of s, 0 for none.
func nameLen(s []byte) int {
	i := 0
	for i < len(s) && isNameByte(s[i], i == 0) {
		i++
	}
	return i
}

// parseRef parses the reference at the start of s, which begins with an
// opener and TemplatePrefix. It returns the reference as written (for errors), NAME,
// the default and whether there is one, and the reference's length.
func parseRef(s []byte) (ref, name, def string, hasDef bool, n int, err error) {
	start := 2 + len(TemplatePrefix)
	i := start + nameLen(s[start:])
	name = string(s[start:i])
	shown := func(end int) string {
		if end > 60 {
			return string(s[:60]) + "…"
		}
		return string(s[:end])
	}
	if name == "" {
		return "", "", "", false, 0, fmt.Errorf("%q: %s must be followed by a name matching [A-Za-z_][A-Za-z0-9_]*", shown(i), TemplatePrefix)
	}
	if i < len(s) && s[i] == ':' {
		hasDef = true
		j := i + 1
		for j < len(s) && s[j] != '}' && s[j] != '\n' {
			j++
		}
		def = string(s[i+1 : j])
		i = j
	}
	if i >= len(s) || s[i] != '}' {
		return "", "", "", false, 0, fmt.Errorf("%q: unterminated reference to %s%s (want %s%s[:default]})", shown(i), TemplatePrefix, name, TemplatePrefix, name)
	}
	i++
	return string(s[:i]), name, def, hasDef, i, nil
}

func isNameByte(c byte, first bool) bool {
	return c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || !first && '0' <= c && c <= '9'
}

// Tree renders every regular file ending in ".tmpl" under dir/teletraan/
// (recursively), writing the result beside it without the suffix, with the
// template's permission bits, atomically (a reader sees the old or the new
// file, never a partial one), and leaves the .tmpl in place so that a later
// RESTART can render it again with new values. config supplies the values,
// keyed by NAME. A missing teletraan/ directory is not an error. A template
// that is not a regular file (e.g. a symlink) is an error; symlinked
// directories are not followed. Errors name the file; rendering stops at the
// first one, and files already rendered stay rendered.
//
// The directories under teletraan/ must be readable and searchable by the
// caller; those holding templates need not be writable. When one lacks its
// owner's write or search permission (a package may ship a read-only
// teletraan/), Tree adds them while it writes the rendered file there and
// then restores the directory's mode, so rendering works for the
// directory's owner as it does for root; a crash in between leaves the
// directory owner-writable. The directory's modification time changes, as
// with any file created in it.
func RenderTemplates(dir string, config map[string]string) error {
	base := filepath.Join(dir, ScriptDir)
	if _, err := os.Lstat(base); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	lookup := func(name string) (string, bool) {
		v, ok := config[name]
		return v, ok
	}
	return filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("render: %w", err)
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), TemplateSuffix) || d.Name() == TemplateSuffix {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("render: %s: template is not a regular file", p)
		}
		return renderFile(p, lookup)
	})
}

func renderFile(p string, lookup func(string) (string, bool)) error {
	src, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	out, err := render(src, lookup)
	if err != nil {
		return fmt.Errorf("render: %s: %w", p, err)
	}
	dst := strings.TrimSuffix(p, TemplateSuffix)
	return inWritableDir(filepath.Dir(dst), func() error {
		return writeFile(p, dst, out, fi.Mode().Perm())
	})
}

// writeFile writes out to dst atomically, with mode perm; p is the template,
// for errors.
func writeFile(p, dst string, out []byte, perm fs.FileMode) error {
	pf, err := renameio.NewPendingFile(dst,
		renameio.WithTempDir(filepath.Dir(dst)),
		renameio.WithStaticPermissions(perm))
	if err != nil {
		return fmt.Errorf("render: %s: %w", p, err)
	}
	defer pf.Cleanup()
	if _, err := pf.Write(out); err != nil {
		return fmt.Errorf("render: %s: %w", p, err)
	}
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("render: %s: %w", p, err)
	}
	return nil
}

// ownerWriteSearch are the permission bits creating and renaming a file in a
// directory takes.
const ownerWriteSearch fs.FileMode = 0o300

// inWritableDir runs fn, which creates files in dir, with dir writable and
// searchable by its owner: when dir's mode lacks either bit, it adds them
// for the duration of fn and restores the mode afterwards. An error making
// dir writable or restoring its mode is returned (after fn's own, if both
// failed).
func inWritableDir(dir string, fn func() error) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	mode := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	if mode&ownerWriteSearch == ownerWriteSearch {
		return fn()
	}
	if err := os.Chmod(dir, mode|ownerWriteSearch); err != nil {
		return fmt.Errorf("render: make %s writable: %w", dir, err)
	}
	err = fn()
	if rerr := os.Chmod(dir, mode); rerr != nil {
		return errors.Join(err, fmt.Errorf("render: restore the mode of %s: %w", dir, rerr))
	}
	return err
}
