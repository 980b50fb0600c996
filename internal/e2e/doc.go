// Package e2e holds the end-to-end test of pushpull's whole loop with real
// processes: the release, pushui and pulld programs and the sample app of
// examples/hello, built by TestMain with `go build`, on a file:// bucket
// and on the S3 test server (internal/testing/testserver, installed by `make
// tools`).
//
// The test walks a group, demo, through what an operator does: release
// hello three times (v1, v2, and a v3 whose server crashes on start), set
// v1 in the group's manifest through pushui's JSON API (GET for the ETag,
// PUT with If-Match) and let demo-1's pulld, started with -groups demo and
// no manifest of its own, install it (the sample server answers with v1
// and the message from the group's config, on the port of its pulld's
// environment), move to v2, have a second host (demo-2) join the group and
// converge by itself with no write, go back to v1 by rollback
// after deleting v1's package from the bucket (so the rollback provably
// downloads nothing), push v3 and see its failing POST_RESTART rolled back
// automatically and reported as failed, with the script's output, by
// pushui's API, and finally remove the app (STOPPING runs and the sample
// server is gone).
//
// On file://, each step runs `pulld -once` and checks its exit status; on
// S3, pulld runs as a daemon polling once an hour, and pushui's HTTP nudge
// is what makes it act. Cleanup runs `pulld -terminate` and kills any
// sample server still running through its pid file.
//
// The package has no code outside its test; this file only documents it.
package e2e
