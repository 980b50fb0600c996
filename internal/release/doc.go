// Package release implements the release command: it packages a build directory into the bucket as an immutable,
// optionally signed package, and can point servers' manifests at it.
//
// With Format deb the tree is instead written as a Debian package, in
// memory (pkgformat.WriteDeb), and ImportSkia (release -import-skia) moves
// a Skia push bucket into pushpull's layout (docs/skia.md).
//
// # Packaging
//
// The tree is walked first, reading only file metadata, to validate it and
// to fix the order of entries; then it is archived in a single streaming
// pass: files → tar → compressor (multi-threaded zstd for tar.zst, parallel
// gzip for tar.gz) → sha256 and minisign digests → bucket upload. The archive
// is never written to a temporary file nor held in memory; memory use does
// not grow with the size of the tree, only (slightly) with the number of
// entries.
//
// The archive is deterministic in everything but the build time:
//
//   - entries are in a fixed order: depth first, the entries of each
//     directory sorted by name (bytewise), each directory before its
//     contents; paths are relative and slash-separated, without "./";
//   - permission bits (including setuid, setgid and sticky) are kept;
//   - ownership is normalised: uid and gid 0, no user or group names;
//   - modification times are normalised to the build time (the package's
//     built metadata, whole seconds), so a package's bytes depend only on the
//     tree's contents and modes and on when it was built, and unpacked files
//     look exactly as old as the build;
//   - symbolic links are stored as links, never followed. A link must stay
//     inside the tree: an absolute target, or one that climbs out of DIR, is
//     refused, since the unpacked build lives in a directory of its own on
//     the host;
//   - hard links are stored as separate regular files;
//   - sockets, devices and named pipes are refused;
//   - a file or directory named .git, at any depth, is left out (DIR is
//     often the repository itself).
//
// A file that changes size while it is being archived fails the release.
//
// # Validation
//
// Before anything is uploaded the teletraan/ directory is checked. In
// teletraan/ and in each teletraan/{env}/ directory (env a valid env name):
//
//   - the six script names PRE_DOWNLOAD, POST_DOWNLOAD, PRE_RESTART,
//     RESTARTING, POST_RESTART and STOPPING must be regular files (not links)
//     with the owner's execute bit set;
//   - a name that looks like a script but is none of the six is an error
//     that names it and, when close, the script it was probably meant to be
//     (RESTARTNG, restarting, RESTARTING.sh): such a file would silently
//     never run. A name "looks like a script" when it is all upper case
//     (letters, digits, underscores) or when, ignoring case and any
//     extension, it is one of the six;
//   - NAME.tmpl is a template (pkgformat.RenderTemplates) and renders to NAME, so
//     the same rules apply to NAME: a template of a script must be
//     executable, since the rendered file keeps its mode;
//   - any other file (helpers such as common.sh, config files) is allowed;
//   - a directory directly under teletraan/ must have a valid env name;
//     what is below teletraan/{env}/ other than scripts is not checked.
//
// A tree without teletraan/ is released with a warning (a config-only
// package). teletraan that is not a directory is an error.
//
// # Git facts
//
// Unless given with -commit, -branch and -repo, release asks git (the git
// command, run in DIR): commit is HEAD, branch the current branch (empty on
// a detached HEAD), repo the URL of the remote named origin with any
// credentials removed. dirty is true when `git status --porcelain` lists
// anything for the whole working tree (untracked files included, ignored
// ones not), and is read even when -commit is given. A DIR outside any git
// repository (or without git installed) needs -commit; dirty is then false.
//
// # Names and immutability
//
// The package name is {app}/{app}-{built}-{commit 12}[-dirty].{format}, with
// built the current UTC time in whole seconds. Packages are written only if
// absent: a second release of the same commit within the same second fails
// with ErrExists and never overwrites the first.
//
// # Signing
//
// With a signing key (minisign secret key file), the package's signature is
// stored beside it as {key}.minisig before the package itself is sealed, so
// a pulld that verifies never sees the package without its signature. The
// signature's trusted comment binds the package name and sha256 (see
// internal/signing). A key made by the minisign CLI is usually encrypted;
// its password is read from the environment variable PasswordEnv
// (PUSHPULL_SIGN_PASSWORD). To make a key:
//
//	minisign -G -p release.pub -s release.key      # encrypted, asks for a password
//	minisign -G -W -p release.pub -s release.key   # unencrypted (CI secret stores)
//
// release.pub goes to every host (pulld -verify-key release.pub).
//
// The bucket: a file:// bucket must be an existing directory, as for every
// program (blobstore.Open): one that does not exist is refused before
// anything is uploaded, with one line naming the directory, since it is
// most often a typo. With Create (-create) release makes it instead (the
// first release, or ImportSkia, into a new bucket) and the log says so;
// List never makes one. An S3 store that does not honour conditional
// writes is refused before anything is uploaded, unless
// AllowUnconditionalStore (-allow-unconditional-store).
//
// # Output
//
// A release prints the package name as the first line of Out, then one
// line "rollout GROUP ID" for each rollout started (Rollouts), so that a
// script reading the first line gets the name whatever it asked for. With
// JSON (-o json) Out gets one JSON object instead, a JSONResult: package,
// sha256, signed, deployed (the servers and groups now naming it, as
// {"kind", "name"}), rollouts ({"group", "env", "id"}), and error when a
// deploy or rollout failed after the package was stored. Nothing is
// printed when nothing was stored.
//
// List (-list) prints a table of the app's packages; an app without any,
// often a typo, is an error (ErrNoPackages, exit status 1) naming the apps
// the bucket does have.
//
// # Deploying
//
// With servers to deploy to, after the package is stored each server's
// manifest is updated through internal/fleet, the path every writer of
// desired state takes: the push config in the bucket (config/push.json)
// must list the server and allow the app there, or that server is refused
// and left as it is (with no config in the bucket, only servers that
// already have a manifest are updated, so a typo creates nothing). The
// write is a conditional read-modify-write (retried on conflicts, so
// concurrent releases and pushui never lose each other's changes): every entry of the app is pointed at the new package, keeping its
// env, config and policy, or a plain entry is appended; other entries are
// untouched. A manifest that does not parse is refused and left as it is.
// Each change is recorded under audit/. The changed servers are then
// nudged (internal/nudge); a failed nudge is only logged, since pulld's poll
// converges anyway.
package release
