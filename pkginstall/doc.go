// Package pkginstall is pushpull's host install engine: it brings one env of
// a host to one manifest entry (package, env, config, failure policy, restart
// token) with Teletraan's deploy cycle, and it is the library pulld calls.
// It has no loop, no polling and no flags of its own.
//
// # Layout
//
// An Engine owns a root directory (docs/design.md, "One deploy, end to end"):
//
//	root/state.json                        what is installed per env (written atomically)
//	root/lock                              flock: one Engine per root
//	root/envs/{env}/builds/{package-id}/   unpacked, verified builds; the Keep most recently serving kept
//	root/envs/{env}/builds/.tmp-*          downloads and deletions under way (removed by Open)
//	root/envs/{env}/current -> builds/{id} the serving build, switched atomically
//	root/envs/{env}/logs/                  one file per script attempt
//
// A Debian package (manifest.FormatDeb) is not unpacked: its build
// directory holds the verified .deb (pkgformat.DebFile), and its steps are
// dpkg's: RESTARTING runs dpkg -i (with Config.AptFix, apt-get -f install
// when that fails), STOPPING dpkg -r of its Package, the other steps have
// nothing to run. The cycle, the kept builds, the failure policies and the
// per-attempt logs are the same (docs/skia.md).
//
// # The cycle
//
// A deploy walks Teletraan's steps. The script of each step comes from a
// definite build: the download scripts from the build serving when the
// deploy starts, the restart scripts from the build being deployed.
//
//	            serving build (S)            pkginstall            new build (N)
//	          ┌──────────────────┐     ┌──────────────────┐   ┌──────────────────┐
//	deploy:   │ PRE_DOWNLOAD     │ ──▶ │ DOWNLOADING      │   │                  │
//	          │                  │     │  stream, sha256, │   │                  │
//	          │                  │     │  signature,      │   │                  │
//	          │                  │     │  unpack to .tmp  │   │                  │
//	          │ POST_DOWNLOAD    │ ◀── │                  │   │                  │
//	          │                  │ ──▶ │ STAGING          │   │                  │
//	          │                  │     │  render *.tmpl,  │   │                  │
//	          │                  │     │  set dir modes,  │   │                  │
//	          │                  │     │  rename to       │   │                  │
//	          │                  │     │  builds/N,       │   │                  │
//	          │                  │     │  current -> N    │ ─▶│ PRE_RESTART      │
//	          │                  │     │                  │   │ RESTARTING       │
//	          │                  │     │                  │   │ POST_RESTART     │
//	          └──────────────────┘     └──────────────────┘   └────────┬─────────┘
//	                                                                   ▼
//	                                                             SERVING_BUILD
//
// The variants:
//
//   - First deploy (no serving build): no PRE_DOWNLOAD or POST_DOWNLOAD;
//     FIRST_DEPLOY=True.
//   - Regular deploy (OPCODE=DEPLOY, DEPLOY_TYPE=REGULAR): as drawn.
//     A build already kept on disk is never downloaded again.
//   - Rollback (the entry names a build older than the serving one and still
//     kept under builds/; OPCODE=ROLLBACK): no DOWNLOADING at all; S's
//     PRE_DOWNLOAD and POST_DOWNLOAD, STAGING re-renders the kept build's
//     templates and switches current, then the kept build's restart scripts.
//   - Restart (same package, new config or restart token; OPCODE=RESTART):
//     STAGING re-renders the serving build's templates, then its PRE_RESTART,
//     RESTARTING and POST_RESTART.
//   - Stop (Stop, for an env leaving the manifest or a host going away;
//     OPCODE=STOP): the serving build's STOPPING, then current is removed.
//     Builds stay on disk.
//
// # Scripts
//
// Scripts live in teletraan/ of a build, or in teletraan/{ENV_NAME}/ when that
// directory exists (it then wins as a whole). A missing script is skipped.
// Each script runs with its directory as working directory, in its own
// process group, a per-attempt timeout (Config.StepTimeout) that kills the
// whole group, and up to Config.Tries attempts with doubling backoff when it
// exits non-zero. A script killed at the timeout is not tried again
// (Teletraan's SCRIPT_TIMEOUT): the failure policy acts at once. Its output
// goes to a log file per attempt under logs/, {DEPLOY_ID}.{step}.{try}.log,
// and {DEPLOY_ID}.rollback.{step}.{try}.log for the runs of a rollback
// (children inherit the file, so a service started in the background never
// blocks the deploy), line by line to the logger (message "script output",
// attributes env, package, step, try and line, package naming the build
// whose script it is, which in a rollback is the build returned to), and its
// last 10 KB to the Result.
//
// Its environment is pulld's own, then the env's config values, then
// Teletraan's variables, which win over config keys of the same name:
//
//	ENV_NAME      the env
//	STAGE_NAME    the server name (Config.Server)
//	DEPLOY_ID     unique per Apply or Stop; shared by its steps and tries
//	DEPLOY_STEP   PRE_DOWNLOAD, POST_DOWNLOAD, PRE_RESTART, RESTARTING, POST_RESTART or STOPPING
//	OPCODE        DEPLOY, ROLLBACK, RESTART or STOP
//	DEPLOY_TYPE   REGULAR, ROLLBACK, RESTART or STOP
//	FIRST_DEPLOY  True when no build of the env was serving when the deploy began
//	              (the first deploy, or the first after a stop); unset otherwise,
//	              as Teletraan's agent does (scripts test [ "$FIRST_DEPLOY" = "True" ])
//	BUILD_*       the build being deployed, at every step, PRE_DOWNLOAD included,
//	              even in scripts of the serving build: BUILD_ID is the package
//	              file name, BUILD_NAME the app, BUILD_COMMIT, BUILD_BRANCH and
//	              BUILD_REPO come from the package's metadata (read before the
//	              first script), BUILD_URL is the object's bucket URL
//	COMPUTE_ENV_TYPE  Config.ComputeEnvType, PRODUCTION by default (Teletraan's)
//	TARGET        root/envs/{env}/current
//	BUILDS_DIR    root/envs/{env}/builds
//
// IS_DOCKER, which Teletraan's agent sets only inside a container, is never
// set; neither variable that Teletraan leaves unset when false is inherited
// from pulld's own environment or taken from a config key.
//
// # Failures
//
// A failure before current is switched (a download script, the download,
// verification, unpacking, rendering) leaves the serving build untouched and
// serving: the Result is FAILED and nothing more runs (a PRE_DOWNLOAD that
// stopped the service is not undone). A failure after the switch, or of a
// restart (its rendering included), applies the entry's policy:
//
//   - rollback (default): after a deploy or a rollback action, the build
//     serving before gets its templates rendered again with the config it
//     served with, current goes back to it, and its PRE_RESTART, RESTARTING
//     and POST_RESTART run (OPCODE=ROLLBACK, DEPLOY_TYPE=ROLLBACK). After a
//     restart whose config differs from the one the restart scripts last
//     completed with, the serving build's templates are rendered again with
//     that previous config and its restart scripts run again, the same way.
//     The Result is ROLLED_BACK; it is FAILED when there is no previous
//     build (a first deploy), when the restart changed only the restart
//     token (the config is the one that served: there is nothing different
//     to return to), or when the rollback fails too;
//   - continue: the env is left as it is, FAILED;
//   - stop: STOPPING runs from the failing build and current is removed;
//     the env is STOPPED.
//
// The Result's What field says which of these happened; its Step and
// Output are those of the step that failed (the rollback's, when the
// rollback fails too), and its Err is set. After a
// rollback the state records the build and the config that serve again, so
// Plan still sees the entry as not applied (manifest.ActionDeploy for a rolled-back
// build, manifest.ActionRestart for a rolled-back config) and pulld retries it with
// backoff, not on every poll. A deploy whose context ends (pulld shutting
// down) applies no policy: it stops where it is, FAILED, and the next Apply
// finishes it. A failed restart that was not rolled back keeps the build
// and is planned as a restart again.
//
// # Crash safety
//
// A build is unpacked into builds/.tmp-{id}-*, verified against the object's
// sha256 (and signature) while streaming, rendered, given the directory
// modes of the archive (after rendering, so that a directory the package
// makes read-only still receives its rendered templates when pulld is not
// root), and only then renamed to builds/{id}; current is switched with an
// atomic symlink rename; builds are deleted by renaming them to a .tmp- name
// first (read-only directories are made writable to delete them). So after
// a crash at any point current names a complete, verified build, state.json
// (replaced atomically after every step) parses, and Open removes whatever
// .tmp- is left. The next Apply of the same entry finishes or redoes the work:
// Plan looks at current on disk, not only at state.json.
//
// A switch of current, by a deploy or by the rollback policy, is recorded
// in state.json before it is made, and Open undoes a recorded switch that
// a crash kept from being made; so until a rollback has completed,
// state.json names both the build serving before, with its config, and the
// build being tried, and the next Apply of the entry deploys it again and
// rolls back again if it still fails. A restart records the new config only
// once the restart scripts complete with it, and marks the env unhealthy
// before rendering; so after a crash during a restart or its rollback the
// recorded config is still the one that last served, and the entry is
// planned as a restart again.
package pkginstall
