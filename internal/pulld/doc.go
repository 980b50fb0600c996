// Package pulld is the fleet daemon behind cmd/pulld: it keeps one host
// serving what its manifest, servers/{server}.json in the fleet's bucket,
// and the manifests of its groups, groups/{group}.json, say, installs
// through pkginstall, and reports to status/{server}.json (docs/design.md,
// "One deploy, end to end" and "Groups"). Run is the whole program;
// cmd/pulld only parses flags into a Config.
//
// # The reconcile loop
//
// A reconcile asks the bucket whether each of its documents (its own
// manifest, then one per group of Config.Groups) changed since the version
// last read (blobstore.ChangedManifest: one small request each, no body),
// and reads and validates only those that did. It merges them
// (manifest.Merge: the host's own entry wins; an env two groups name is
// held and reported). Then, in that order, each env not serving its entry
// is deployed, rolled back or restarted through pkginstall (whose Apply
// plans once and says which), and the installed envs that left every
// document are stopped (STOPPING runs), unless a group's manifest is
// missing. One env's failure does not stop the others.
//
// Decisions:
//
//   - Nothing is touched while the newest manifest is invalid: pulld neither
//     acts on the invalid one nor keeps reconciling the last valid one. The
//     reason (which entry, why) is in status as manifest_error, and the
//     invalid version is not read again until it changes.
//   - A missing manifest is not an order to stop everything: a host with
//     installed envs and no manifest leaves them as they are and reports
//     it. An explicit empty manifest stops every env.
//   - A failed env is retried with exponential backoff (1 min doubling to
//     1 h, ±20%; Config.RetryMin and RetryMax) for as long as its manifest entry stays the same; any change
//     of that entry (package, config, policy, restart) is tried at once. To
//     retry a failed push right away, change its restart value. Changes to
//     other envs do not reset its backoff.
//   - Bucket errors (the manifest cannot be read) are retried after 2 s,
//     doubling up to the poll period. Services keep running: nothing on the
//     host is touched without a readable, valid manifest.
//
// # Polling, heartbeat and the idle cost
//
// Polls come every -poll (default 5 min) ±20% jitter, the first after a
// random delay of up to a tenth of that (at most 30 s), so a fleet rebooted
// at once spreads its reads. The status is written after every reconcile
// that changed it, when an action starts (state DEPLOYING), and as a
// heartbeat at the first poll at least four fifths of -heartbeat (default:
// the poll period, 5 min) after the last write, so that by default every
// poll writes one and pushui shows a host that stopped reporting as silent
// within three poll periods (15 min). An idle host in no group then costs
// 24 bucket requests an hour (12 conditional checks, 12 status writes);
// a large fleet may raise -heartbeat to write less, at the price of seeing
// a dead host later. status.poll_seconds carries max(poll, heartbeat): it
// is what manifest.Status.Stale needs to tell a quiet host from a dead
// one.
//
// # Nudges
//
// A nudge only asks for a reconcile now; it carries no data, so a lost one
// costs at most a poll period and a spurious one one small request. Nudges
// go into a channel of capacity one: a nudge during a reconcile is kept and
// one more reconcile follows; further nudges merge with it. At most 5
// nudge-triggered reconciles a second are run (burst 5), so a flood of POST
// /nudge cannot make a host hammer the bucket. Sources (internal/nudge, its Watch functions):
//
//   - -nudge gce (or gce:ATTR): a hanging GET on the instance metadata
//     attribute pushrev, through GCE_METADATA_HOST when set;
//   - -nudge URL: a gocloud.dev/pubsub subscription (mem://, nats://subject
//     with NATS_SERVER_URL); messages whose body is this server's name. The
//     placeholder {server} in URL becomes -server, so that one line such as
//     -nudge nats://pushpull.{server}?natsv2=true gives every host a subject
//     of its own, which large fleets should use: on one shared subject each
//     host receives every server's message;
//   - SIGHUP (systemctl reload pulld) and POST /nudge on -listen, whose
//     body, if any, must be this server's name (421 otherwise);
//   - a file watch on the manifest when the bucket is file://.
//
// # HTTP
//
// -listen (default 127.0.0.1:10114, Skia's pulld port, loopback so that
// nothing is exposed by default) serves GET /status (the status document),
// GET /healthz (200 while the loop is alive, 503 when it is stuck outside a
// deploy script for 5 min; the body says which nudge sources are
// established), GET /metrics (Prometheus, own registry) and POST /nudge.
//
// # Modes and exit codes
//
// Daemon (default) runs until SIGTERM/SIGINT. -once reconciles once: exit 0
// when every env serves its entry, 1 when some env failed, 2 on bad flags or
// an unusable manifest (invalid, unreadable, or missing with envs
// installed). -dry-run prints the plan (deploy, rollback, restart, stop,
// none per env) and changes nothing, not even the status; it does not take
// the root's lock, so it works beside a running pulld. -terminate runs
// STOPPING for every installed env, newest first, without needing the
// bucket (host going away).
//
// # Lifecycle
//
// pkginstall holds an flock on the root, so a second pulld on one root
// refuses to start. pulld tells systemd READY=1 once it holds the lock and
// listens, and sends WATCHDOG=1 every WatchdogSec/2 while the loop is not
// stuck (see deploy/pulld.service). On SIGTERM it takes no new work, lets a
// running script finish for up to -grace (default 2 min; then its context
// is cancelled and pkginstall kills it), writes the status and exits 0. It
// never runs STOPPING on its own shutdown.
//
// Self-update: when a reconcile deploys or rolls back the env of pulld's own
// package (-self, default "pulld"), pulld finishes the cycle, writes its
// status and exits 0, and systemd (Restart=always) starts the new binary,
// which the package's RESTARTING script installed, as Skia's pulld did.
//
// # Host facts
//
// Status carries the hostname and, from Teletraan's host_info file (-host-info,
// default /mnt/deployd/host_info, where Teletraan's provisioning puts it), the
// host id and groups; host= there overrides the OS hostname. -server defaults
// to that host name, or the OS hostname up to its first dot.
package pulld
