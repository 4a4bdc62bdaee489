// Package brokertest holds test helpers for code that talks to the broker
// over TLS: a throw-away certificate authority with a server certificate
// for 127.0.0.1 and client certificates.
package brokertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// ClientCN is the subject CN of the client certificate NewPKI makes.
const ClientCN = "scada"

// PKI is a certificate authority with PEM files in a test's temporary
// directory.
type PKI struct {
	Dir            string
	CAFile         string // the CA certificate
	ServerCertFile string // for 127.0.0.1, ::1 and localhost
	ServerKeyFile  string
	ClientCertFile string // CN=ClientCN, for client authentication
	ClientKeyFile  string

	ca    *x509.Certificate
	caKey *ecdsa.PrivateKey
}

// NewPKI makes a CA, a server certificate and a client certificate
// (CN=ClientCN) and writes them to t.TempDir().
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	p := &PKI{Dir: t.TempDir()}
	p.caKey = newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "fieldbridge test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatalf("brokertest: CA certificate: %v", err)
	}
	if p.ca, err = x509.ParseCertificate(der); err != nil {
		t.Fatalf("brokertest: CA certificate: %v", err)
	}
	p.CAFile = filepath.Join(p.Dir, "ca.crt")
	writePEM(t, p.CAFile, "CERTIFICATE", der)

	p.ServerCertFile, p.ServerKeyFile = p.issue(t, "server", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:    []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	p.ClientCertFile, p.ClientKeyFile = p.ClientCert(t, ClientCN)
	return p
}

// ClientCert issues a client certificate with the given subject CN and
// returns its certificate and key files.
func (p *PKI) ClientCert(t testing.TB, cn string) (certFile, keyFile string) {
	t.Helper()
	return p.issue(t, "client-"+cn, &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

// CAPool returns a pool holding the CA certificate.
func (p *PKI) CAPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	return pool
}

// ClientTLS returns a client configuration that trusts the CA and, when
// certFile is not empty, presents that certificate.
func (p *PKI) ClientTLS(t testing.TB, certFile, keyFile string) *tls.Config {
	t.Helper()
	cfg := &tls.Config{RootCAs: p.CAPool(), MinVersion: tls.VersionTLS12}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatalf("brokertest: client certificate: %v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg
}

func (p *PKI) issue(t testing.TB, name string, tmpl *x509.Certificate) (certFile, keyFile string) {
	t.Helper()
	key := newKey(t)
	tmpl.SerialNumber = serial(t)
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatalf("brokertest: %s certificate: %v", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("brokertest: %s key: %v", name, err)
	}
	certFile = filepath.Join(p.Dir, name+".crt")
	keyFile = filepath.Join(p.Dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("brokertest: key: %v", err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatalf("brokertest: serial: %v", err)
	}
	return n
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("brokertest: %v", err)
	}
}
