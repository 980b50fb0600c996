// Package pkgformat is the one home of pushpull's package format: what a
// build's directory holds, which names are its deploy scripts and
// templates, and which paths may be in it, with both the writer (WalkTree
// validates a build directory, Tree.WriteArchive packs it; release calls
// them) and the reader (Extract and ExtractDeferred unpack a package
// safely; pkginstall calls them, and RenderTemplates renders the templates of an
// unpacked build; pkginstall runs its scripts by the same rules), as archive/tar holds both
// its Reader and its Writer.
//
// A package is a tar archive, compressed with zstd or gzip
// (manifest.Format), of a build's files. Its deploy scripts are the six
// Scripts in ScriptDir (teletraan/), or in teletraan/{env}/ when one
// artifact runs as several envs: that directory, when it exists, wins as a
// whole. Any file under teletraan/ whose name ends in TemplateSuffix
// (.tmpl) is a template, rendered beside itself without the suffix. Every
// path is relative and stays inside the build once cleaned (Escapes), and
// so does every symbolic link's target (LinkEscapes).
package pkgformat

import (
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pushpull/pushpull/manifest"
)

// ScriptDir is the directory of a build that holds its deploy scripts.
const ScriptDir = "teletraan"

// TemplateSuffix marks a template under ScriptDir.
const TemplateSuffix = ".tmpl"

// The deploy scripts, Teletraan's six steps, in the order a deploy runs
// them (STOPPING runs when an env is stopped).
const (
	PreDownload  = string(manifest.StepPreDownload)
	PostDownload = string(manifest.StepPostDownload)
	PreRestart   = string(manifest.StepPreRestart)
	Restarting   = string(manifest.StepRestarting)
	PostRestart  = string(manifest.StepPostRestart)
	Stopping     = string(manifest.StepStopping)
)

// scripts lists the deploy scripts.
var scripts = []string{PreDownload, PostDownload, PreRestart, Restarting, PostRestart, Stopping}

// Scripts returns the six deploy script names, in step order.
func Scripts() []string { return slices.Clone(scripts) }

// IsScript reports whether name is one of the six deploy script names.
func IsScript(name string) bool { return slices.Contains(scripts, name) }

// ScriptsDir returns the directory env's scripts come from in the build at
// dir: teletraan/{env} when it is a directory, else teletraan.
func ScriptsDir(dir, env string) string {
	specific := filepath.Join(dir, ScriptDir, env)
	if fi, err := os.Stat(specific); err == nil && fi.IsDir() {
		return specific
	}
	return filepath.Join(dir, ScriptDir)
}

// Escapes reports whether the relative slash-separated path p, cleaned,
// leaves its base directory ("..", "../x", "a/../../x").
func Escapes(p string) bool {
	c := path.Clean(p)
	return c == ".." || strings.HasPrefix(c, "../")
}

// LinkEscapes reports whether a symbolic link at the slash-separated path
// rel (relative to the build) with target leaves the build: an empty or
// absolute target does, and so does a relative one that, resolved against
// the link's directory, escapes.
func LinkEscapes(rel, target string) bool {
	if target == "" || path.IsAbs(target) || filepath.IsAbs(target) {
		return true
	}
	return Escapes(path.Join(path.Dir(path.Clean(rel)), filepath.ToSlash(target)))
}
