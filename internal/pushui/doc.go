// Package pushui is pushpull's web UI and JSON API: people pick which
// version of each app every server runs, and see what the servers actually
// run (Skia's push server, with its weaknesses fixed).
//
// The bucket is the only state, the push config included: it is the
// bucket's config/push.json (Options.Config only bootstraps it), followed
// as it changes, and every change of a manifest goes through
// internal/fleet, which checks it against that config. A Server lists it once (servers, their
// manifests under servers/ and statuses under status/, every app's package
// names) and renders the main page from memory; package metadata is kept
// forever because packages are immutable. The refresh button, and an
// optional background interval, list it again; the pages about one server
// or one app read what they show fresh.
//
// Every change is a conditional write: the forms carry the manifest
// Version their page was rendered from, and a manifest changed since is
// never overwritten (the page answers 412 and shows the new state). The API
// does the same with ETag and If-Match. Every change is recorded under
// audit/ and the server is nudged.
//
// Routes (GET unless marked):
//
//	/                                     servers: desired against actual (?server=&app=&group=)
//	/servers/{server}                     one server, with its history
//	/servers/{server}/apps/{app}          versions of an app, newest first; env settings
//	/servers/{server}/envs/{env}/output   the failing script's output, as text
//	POST /servers/{server}/apps/{app}/deploy   package, version
//	POST /servers/{server}/apps/{app}/remove   version, confirm=yes
//	POST /servers/{server}/envs/{env}/restart  version
//	POST /servers/{server}/envs/{env}/config   version, config (KEY=VALUE lines)
//	POST /promote                         package, group: one version on every server of a group
//	POST /refresh                         list the bucket again
//	/config                               the push config, editable by admins, with its history
//	POST /config                          version, config (JSON)
//	/api/servers                          every server: manifest, status, per-env drift
//	/api/servers/{server}                 the manifest, with ETag
//	PUT /api/servers/{server}             replace it: If-Match (412 stale, 428 missing), 400 invalid
//	/api/servers/{server}/status          pulld's last report, script output included
//	/api/servers/{server}/history         audit records, newest first
//	/api/apps/{app}/packages              packages with metadata, newest first
//	POST /api/deploy                      {"package", "servers" | "group"}
//	/api/config                           the push config, with ETag
//	PUT /api/config                       replace it: If-Match (412 stale, 428 missing), 400 invalid
//
// Security: Run listens on loopback unless authentication is configured (a
// trusted identity header from an auth proxy, or an htpasswd file of bcrypt
// hashes); only -admins may write; every state-changing request passes
// http.CrossOriginProtection; pages carry a strict Content-Security-Policy
// and run no inline script.
package pushui
