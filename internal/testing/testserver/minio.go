package testserver

import (
	"strconv"
	"testing"
)

// StartMinIO starts a MinIO server (single drive, in a temporary
// directory) and returns it as an S3: its Bucket, Env and Setenv work as
// for versitygw. It is stopped when the test ends. A missing binary
// (installed by `make test-stores`) or a server that does not come up
// fails the test.
func StartMinIO(t testing.TB) *S3 {
	t.Helper()
	s := newS3(t, "minio")
	args := func(_ string, port int) []string {
		return []string{"server", "--quiet", "--address", "127.0.0.1:" + strconv.Itoa(port), "--console-address", "127.0.0.1:0", s.Dir}
	}
	env := []string{"MINIO_ROOT_USER=" + s.AccessKey, "MINIO_ROOT_PASSWORD=" + s.SecretKey, "MINIO_REGION=" + s.Region, "MINIO_BROWSER=off", "MINIO_UPDATE=off"}
	s.srv = startServerEnv(t, "minio", args, answers("/minio/health/live", 200), env, "MINIO_")
	s.Endpoint = "http://" + s.srv.proxy.addr
	return s
}
