// Package testserver starts real object-storage servers for tests: a GCS
// JSON API server (fake-gcs-server) and an S3 server (versitygw with its
// posix backend), each as a child process listening on a free 127.0.0.1
// port, with its data in a t.TempDir(). Both are stopped by t.Cleanup.
//
// The binaries are looked up in the module's bin/ directory (found by walking
// up from the test's working directory to go.mod), then on PATH. `make tools`
// installs the pinned versions there. A missing binary fails the test; it is
// never skipped.
//
// A typical test:
//
//	gcs := testserver.StartGCS(t)
//	gcs.Setenv(t) // STORAGE_EMULATOR_HOST
//	url := gcs.Bucket(t, "fleet") // "gs://fleet"
//	b, err := blob.OpenBucket(t.Context(), url)
//
//	s3 := testserver.StartS3(t)
//	s3.Setenv(t) // AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, …
//	url = s3.Bucket(t, "fleet") // "s3://fleet?endpoint=http://127.0.0.1:P&use_path_style=true&region=us-east-1"
//
// Child processes (a pulld or release under test) get the same settings
// through Env, appended to os.Environ().
//
// Clients never talk to a server directly: they go through a small TCP proxy
// owned by the test process, whose address stays fixed across Stop and
// Restart and which counts the bytes the server sends (BytesSent), so a test
// can prove that a poll transferred no object body. Stop kills the server
// (SIGKILL) and closes the proxy, so clients see "connection refused" as they
// would from a crashed server; Restart brings it back on the same address
// with the same data.
//
// Setenv uses t.Setenv, so tests that call it cannot run in parallel; the
// environment variables are process-wide, and gocloud's default URL openers
// read them when a bucket is opened.
//
// The server's log (stdout and stderr, across restarts) is written to a file
// under t.TempDir() and printed with t.Log when the test has failed.
package testserver
