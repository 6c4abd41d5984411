// goverify: an independent verifier for Coffer's certificates, on Go's crypto/x509 only.
//
//	goverify ROOT.pem CHAIN.pem LEAF.pem USAGE   (USAGE: server|client|any)
//
// Verifies LEAF against ROOT with CHAIN as intermediates and the given extended key usage,
// then prints the leaf's and the chain's fields as JSON for the test to check.
package main

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
)

func load(path string) []*x509.Certificate {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			fmt.Fprintln(os.Stderr, "parse:", err)
			os.Exit(2)
		}
		out = append(out, c)
	}
	return out
}

type ext struct {
	OID      string `json:"oid"`
	Critical bool   `json:"critical"`
}

type info struct {
	Subject     string   `json:"subject"`
	IsCA        bool     `json:"is_ca"`
	MaxPathLen  int      `json:"max_path_len"`
	KeyUsage    int      `json:"key_usage"`
	ExtKeyUsage []int    `json:"ext_key_usage"`
	SKI         string   `json:"ski"`
	AKI         string   `json:"aki"`
	SerialBits  int      `json:"serial_bits"`
	SerialSign  int      `json:"serial_sign"`
	DNS         []string `json:"dns"`
	IPs         []string `json:"ips"`
	URIs        []string `json:"uris"`
	NotBefore   int64    `json:"not_before"`
	NotAfter    int64    `json:"not_after"`
	Version     int      `json:"version"`
	Extensions  []ext    `json:"extensions"`
	CRLs        []string `json:"crl_distribution_points"`
	IssuingURLs []string `json:"issuing_certificate_url"`
	OCSP        []string `json:"ocsp_server"`
}

func describe(c *x509.Certificate) info {
	i := info{Subject: c.Subject.String(), IsCA: c.IsCA, MaxPathLen: c.MaxPathLen,
		KeyUsage: int(c.KeyUsage), SKI: hex.EncodeToString(c.SubjectKeyId),
		AKI: hex.EncodeToString(c.AuthorityKeyId), SerialBits: c.SerialNumber.BitLen(),
		SerialSign: c.SerialNumber.Sign(), DNS: c.DNSNames, NotBefore: c.NotBefore.Unix(),
		NotAfter: c.NotAfter.Unix(), Version: c.Version, CRLs: c.CRLDistributionPoints,
		IssuingURLs: c.IssuingCertificateURL, OCSP: c.OCSPServer}
	for _, u := range c.ExtKeyUsage {
		i.ExtKeyUsage = append(i.ExtKeyUsage, int(u))
	}
	for _, ip := range c.IPAddresses {
		i.IPs = append(i.IPs, ip.String())
	}
	for _, u := range c.URIs {
		i.URIs = append(i.URIs, u.String())
	}
	for _, e := range c.Extensions {
		i.Extensions = append(i.Extensions, ext{e.Id.String(), e.Critical})
	}
	return i
}

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: goverify ROOT CHAIN LEAF server|client|any")
		os.Exit(2)
	}
	roots := x509.NewCertPool()
	for _, c := range load(os.Args[1]) {
		roots.AddCert(c)
	}
	inter := x509.NewCertPool()
	chain := load(os.Args[2])
	for _, c := range chain {
		inter.AddCert(c)
	}
	leaf := load(os.Args[3])[0]
	usage := map[string]x509.ExtKeyUsage{"server": x509.ExtKeyUsageServerAuth,
		"client": x509.ExtKeyUsageClientAuth, "any": x509.ExtKeyUsageAny}[os.Args[4]]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		fmt.Println("verify failed:", err)
		os.Exit(1)
	}
	out := map[string]interface{}{"leaf": describe(leaf)}
	var cs []info
	for _, c := range chain {
		cs = append(cs, describe(c))
	}
	out["chain"] = cs
	json.NewEncoder(os.Stdout).Encode(out)
}
