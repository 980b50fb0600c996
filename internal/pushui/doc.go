// Package pushui assembles pushpull's web UI and JSON API: people pick
// which version of each app every server runs, and see what the servers
// actually run (Skia's push server, with its weaknesses fixed).
//
// The work is done in the rooms below it; this package only puts them
// together (New, Run):
//
//   - internal/fleetview: the bucket as pushui last saw it, and the view
//     models the pages and the API both show;
//   - ops: the one write path (every change goes through internal/fleet,
//     which checks it against the bucket's push config), the push config
//     in force, the rollout driver;
//   - api: the JSON routes, from one table (GET /api; docs/api.md);
//   - web: the pages, their templates, static files and forms;
//   - auth: who the caller is (htpasswd, a trusted proxy's header, IAP),
//     cross-origin protection, and what an admin may do that others may
//     not.
//
// The bucket is the only state, the push config included: it is the
// bucket's config/push.json (Options.Config only bootstraps it), followed
// as it changes. Every change is a conditional write: the forms carry the
// manifest version their page was rendered from and the API takes ETag
// and If-Match, and a manifest changed since is never overwritten (412).
// Every change is recorded under audit/ and the server or group is
// nudged. The rollout controller (internal/rollout.Driver.Run) runs in
// every replica; leases in the bucket decide which moves each rollout.
//
// Security: Run listens on loopback unless authentication is configured;
// only -admins may write; every state-changing request passes
// http.CrossOriginProtection; pages carry a strict Content-Security-Policy
// and run no inline script. /healthz and /metrics are open to anyone.
package pushui
