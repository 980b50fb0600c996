package testserver

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3 is a running versitygw S3 server over plain HTTP, with its posix
// backend in a temporary directory (one directory per bucket).
type S3 struct {
	// Endpoint is the server's base URL, "http://127.0.0.1:P". It stays the
	// same across Stop and Restart.
	Endpoint string
	// Region is the region the server signs for.
	Region string
	// AccessKey and SecretKey are the root credentials.
	AccessKey, SecretKey string
	// Dir is the posix backend's root directory.
	Dir string

	awsConfig string // an empty file for AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE
	srv       *server
}

// StartS3 starts a versitygw and returns once it answers. It is stopped when
// the test ends. A missing binary or a server that does not come up fails
// the test.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	s := newS3(t, "s3")
	args := func(_ string, port int) []string {
		return []string{
			"--port", "127.0.0.1:" + strconv.Itoa(port),
			"--access", s.AccessKey,
			"--secret", s.SecretKey,
			"--region", s.Region,
			"posix", s.Dir,
		}
	}
	// Any HTTP answer (an anonymous GET / is refused) means it is serving.
	// versitygw reads its settings from VGW_* and ROOT_* variables too.
	s.srv = startServer(t, "versitygw", args, answers("/"), "VGW_", "ROOT_", "LOGFILE=", "WEBHOOK=")
	s.Endpoint = "http://" + s.srv.proxy.addr
	return s
}

// Bucket creates a bucket named name with CreateBucket and returns its
// gocloud URL:
//
//	s3://name?endpoint=http://127.0.0.1:P&use_path_style=true&region=us-east-1
//
// Opening it needs the credentials in Env (see Setenv). An empty name picks
// a fresh one (bucket-1, bucket-2, …). Creating a bucket that exists fails
// the test.
func (s *S3) Bucket(t testing.TB, name string) string {
	t.Helper()
	if name == "" {
		name = s.srv.freshName()
	}
	client := s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
	if _, err := client.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("testserver: create S3 bucket %q: %v", name, err)
	}
	return "s3://" + name + "?endpoint=" + s.Endpoint + "&use_path_style=true&region=" + s.Region
}

// Env returns the environment a process needs to reach this server through
// gocloud's s3:// URLs: the root credentials, the region, and settings that
// keep the AWS SDK from reading the developer's ~/.aws files or asking the
// EC2 metadata service for credentials. Append it to os.Environ() for a
// child process.
func (s *S3) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_SESSION_TOKEN=",
		"AWS_REGION=" + s.Region,
		"AWS_DEFAULT_REGION=" + s.Region,
		"AWS_PROFILE=",
		"AWS_DEFAULT_PROFILE=",
		"AWS_CONFIG_FILE=" + s.awsConfig,
		"AWS_SHARED_CREDENTIALS_FILE=" + s.awsConfig,
		"AWS_ROLE_ARN=",
		"AWS_WEB_IDENTITY_TOKEN_FILE=",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI=",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=",
		"AWS_EC2_METADATA_DISABLED=true",
		// AWS_ENDPOINT_URL* from the developer's shell must not redirect
		// requests away from the endpoint in the bucket URL.
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true",
	}
}

// Setenv sets Env in the test process with t.Setenv, so it is undone when
// the test ends. Tests that call it cannot be parallel.
func (s *S3) Setenv(t testing.TB) {
	t.Helper()
	setenv(t, s.Env())
}

// BytesSent returns how many bytes the server has sent to clients so far,
// counting HTTP headers and bodies.
func (s *S3) BytesSent() int64 { return s.srv.proxy.sent.Load() }

// Stop kills the server (SIGKILL) and drops every connection to it; until
// Restart, connections to Endpoint are refused. The data directory is kept.
// Stop is idempotent and safe to call from any goroutine.
func (s *S3) Stop() { s.srv.stop() }

// Restart stops the server if it runs and starts it again at the same
// Endpoint with the same data, returning once it answers.
func (s *S3) Restart(t testing.TB) {
	t.Helper()
	s.srv.restart(t)
}

// newS3 returns the S3 of a server about to start: test credentials, a
// data directory dataDir in a new temporary directory, and an empty AWS
// config file.
func newS3(t testing.TB, dataDir string) *S3 {
	t.Helper()
	tmp := t.TempDir()
	s := &S3{
		Region:    "us-east-1",
		AccessKey: "pushpull-test",
		SecretKey: "pushpull-test-secret",
		Dir:       filepath.Join(tmp, dataDir),
		awsConfig: filepath.Join(tmp, "aws-config-empty"),
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.awsConfig, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}
