package indextest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TLSProxy is a real nginx that terminates TLS and demands HTTP basic authentication in front
// of a cluster, with a CA and a server certificate made for this test. It runs as a child
// process with everything (configuration, pid, logs, temporary files) in the test's temporary
// directory, and stops when the test ends.
type TLSProxy struct {
	URL      string // https://127.0.0.1:port
	Username string
	Password string // random, for this proxy only

	CAFile          string // PEM of the CA that signed the server certificate
	OtherCAFile     string // PEM of a CA that signed nothing here
	CAFingerprint   string // hex SHA-256 of the CA certificate
	LeafFingerprint string // hex SHA-256 of the server certificate
}

// NginxBinary returns the path of nginx, from PATH or /usr/sbin. When it is missing the test
// is skipped, except under CI=true, where it fails: CI installs nginx (scripts/nginx.sh), so a
// missing one there is a broken setup, not a reason to pass.
func NginxBinary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("nginx is not installed; scripts/nginx.sh installs it (CI=true, so this is a failure, not a skip)")
	}
	t.Skip("nginx is not installed; scripts/nginx.sh installs it")
	return ""
}

// NewTLSProxy starts nginx on a free port of 127.0.0.1, forwarding to target (an http URL).
func NewTLSProxy(t testing.TB, target string) *TLSProxy {
	t.Helper()
	bin := NginxBinary(t)
	dir := t.TempDir()
	p := &TLSProxy{Username: "mimecrawl", Password: "pw-" + randomHex(t, 12)}

	ca, caKey := NewCA(t, "mimecrawl test CA")
	other, _ := NewCA(t, "some other CA")
	leaf, leafKey := NewServerCert(t, ca, caKey)
	p.CAFingerprint = fingerprint(ca)
	p.LeafFingerprint = fingerprint(leaf)
	p.CAFile = filepath.Join(dir, "ca.crt")
	p.OtherCAFile = filepath.Join(dir, "other-ca.crt")
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	// The server sends its certificate and the CA's, as Elasticsearch does; the CA fingerprint
	// is then found among the presented certificates.
	writeFile(t, filepath.Join(dir, "server.crt"), append(pemBlock("CERTIFICATE", leaf.Raw), pemBlock("CERTIFICATE", ca.Raw)...))
	writeFile(t, filepath.Join(dir, "server.key"), pemBlock("PRIVATE KEY", keyDER))
	writeFile(t, p.CAFile, pemBlock("CERTIFICATE", ca.Raw))
	writeFile(t, p.OtherCAFile, pemBlock("CERTIFICATE", other.Raw))
	writeFile(t, filepath.Join(dir, "htpasswd"), []byte(p.Username+":"+ssha(t, p.Password)+"\n"))

	url, err := runNginx(t, bin, dir, func(port int) string {
		return fmt.Sprintf(`client_max_body_size 200m;
  server {
    listen 127.0.0.1:%[1]d ssl;
    server_name localhost;
    ssl_certificate %[2]s/server.crt;
    ssl_certificate_key %[2]s/server.key;
    location / {
      auth_basic "elasticsearch";
      auth_basic_user_file %[2]s/htpasswd;
      # The node behind needs no credentials; do not hand it these.
      proxy_set_header Authorization "";
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass %[3]s;
    }
  }`, port, dir, strings.TrimRight(target, "/"))
	})
	if err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	p.URL = "https" + strings.TrimPrefix(url, "http")
	return p
}

// NewBodyLimitProxy starts nginx on a free port of 127.0.0.1, forwarding plain HTTP to target
// and refusing request bodies over maxBody (nginx's client_max_body_size, e.g. "64k") with
// 413, as a proxy in front of a cluster may. It returns the proxy's http URL.
func NewBodyLimitProxy(t testing.TB, target, maxBody string) string {
	t.Helper()
	bin := NginxBinary(t)
	dir := t.TempDir()
	url, err := runNginx(t, bin, dir, func(port int) string {
		return fmt.Sprintf(`client_max_body_size %[1]s;
  server {
    listen 127.0.0.1:%[2]d;
    location / {
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass %[3]s;
    }
  }`, maxBody, port, strings.TrimRight(target, "/"))
	})
	if err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	return url
}

// runNginx starts nginx with the http block's settings and server that server returns for a
// free port, trying another port when that one was taken meanwhile, and returns
// http://127.0.0.1:port.
func runNginx(t testing.TB, bin, dir string, server func(port int) string) (string, error) {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return "", err
		}
		if lastErr = startNginx(t, bin, dir, port, server(port)); lastErr == nil {
			return fmt.Sprintf("http://127.0.0.1:%d", port), nil
		}
		// Another process may have taken the port between freePort and nginx's bind.
		if !strings.Contains(lastErr.Error(), "in use") {
			break
		}
	}
	return "", lastErr
}

// startNginx runs nginx in the foreground with server in its http block and waits until it
// accepts connections on port.
func startNginx(t testing.TB, bin, dir string, port int, server string) error {
	user := ""
	if os.Geteuid() == 0 {
		// As root, nginx would run its worker as nobody, which cannot enter the test's
		// temporary directory.
		user = "user root root;"
	}
	conf := fmt.Sprintf(`%[1]s
daemon off;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[2]s/client_body;
  proxy_temp_path %[2]s/proxy;
  fastcgi_temp_path %[2]s/fastcgi;
  uwsgi_temp_path %[2]s/uwsgi;
  scgi_temp_path %[2]s/scgi;
  %[3]s
}
`, user, dir, server)
	confFile := filepath.Join(dir, "nginx.conf")
	writeFile(t, confFile, []byte(conf))
	errorLog := filepath.Join(dir, "error.log")
	_ = os.Remove(errorLog)

	cmd := exec.Command(bin, "-p", dir+"/", "-c", confFile, "-e", errorLog)
	// Its own process group, so that stopping it reaches the worker too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(errorLog)
			return fmt.Errorf("nginx exited (%v): %s %s", err, out.String(), log)
		default:
		}
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			c.Close()
			t.Cleanup(stop)
			return nil
		}
		if time.Now().After(deadline) {
			stop()
			return errors.New("nginx did not accept connections within 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// NewCA makes a self-signed CA certificate valid for a day.
func NewCA(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// NewServerCert makes a server certificate for localhost and 127.0.0.1, signed by ca.
func NewServerCert(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// ssha is the salted SHA-1 scheme of nginx's auth_basic_user_file; it needs no htpasswd tool.
func ssha(t testing.TB, password string) string {
	salt := []byte(randomHex(t, 4))
	sum := sha1.Sum(append([]byte(password), salt...))
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(sum[:], salt...))
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func writeFile(t testing.TB, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
