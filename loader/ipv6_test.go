package main

import (
	"errors"
	"testing"
)

func TestV6Facts(t *testing.T) {
	tests := []struct {
		url, server, bootfile string
		err                   error
	}{
		{"tftp://[fec0::2]/boot.cfg", "fec0::2", "boot.cfg", nil},
		{"tftp://[fec0::2]/dir/", "fec0::2", "dir/", nil},
		{"tftp://[fec0::2]:6969/boot.cfg", "fec0::2", "tftp://[fec0::2]:6969/boot.cfg", nil},
		{"http://[fd00::1]:8080/s390x/boot.ipxe", "fd00::1", "http://[fd00::1]:8080/s390x/boot.ipxe", nil},
		{"tftp://boot.example.org/boot.cfg", "boot.example.org", "tftp://boot.example.org/boot.cfg", nil},
		{"", "", "", errNoBootURL},
	}
	for _, tt := range tests {
		server, bootfile, err := v6Facts(tt.url)
		if server != tt.server || bootfile != tt.bootfile || !errors.Is(err, tt.err) {
			t.Errorf("v6Facts(%q) = %q, %q, %v; want %q, %q, %v", tt.url, server, bootfile, err, tt.server, tt.bootfile, tt.err)
		}
	}
	if _, _, err := v6Facts("ftp://[fec0::2]/x"); err == nil {
		t.Errorf("v6Facts accepted an ftp:// URL")
	}
}
