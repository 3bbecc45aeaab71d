package server

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

func TestSelfSignedCertificateAndTLSPolicy(t *testing.T) {
	dir := t.TempDir()
	cert, created, err := loadOrCreateCert("", "", dir, "127.0.0.1:0")
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "tls", "key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	again, created, err := loadOrCreateCert("", "", dir, "127.0.0.1:0")
	if err != nil || created || Fingerprint(again.Certificate[0]) != Fingerprint(cert.Certificate[0]) {
		t.Fatal("the certificate was not reused on the second start")
	}

	ln, err := tls.Listen("tcp", "127.0.0.1:0", TLSConfig(cert))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	dial := func(cfg *tls.Config) error {
		cfg.RootCAs, cfg.ServerName = pool, "127.0.0.1"
		c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(&tls.Config{}); err != nil {
		t.Fatalf("modern client refused: %v", err)
	}
	if err := dial(&tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("TLS 1.1 accepted")
	}
	cbc := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}
	if err := dial(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: cbc}); err == nil {
		t.Error("a CBC suite was accepted")
	}
}
