package httpfetch

import (
	"crypto/x509"
	_ "embed"
	"encoding/pem"
)

// rootsPEM is the CA bundle fixed at build time. The committed roots.pem holds no certificate; a build that needs
// HTTPS against public or site CAs replaces it before `go build`, e.g.
//
//	cp /etc/ssl/certs/ca-certificates.crt netstack/httpfetch/roots.pem
//
// (docs/protocols.md). Text outside PEM blocks is ignored, so the file may carry comments.
//
//go:embed roots.pem
var rootsPEM []byte

// BuiltinRoots returns a pool with the certificates compiled in from roots.pem, and how many there are.
// Blocks that are not certificates, or do not parse, are skipped.
func BuiltinRoots() (*x509.CertPool, int) {
	return parseRoots(rootsPEM)
}

func parseRoots(b []byte) (*x509.CertPool, int) {
	pool := x509.NewCertPool()
	n := 0
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return pool, n
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			continue
		}
		pool.AddCert(cert)
		n++
	}
}
