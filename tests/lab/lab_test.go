package lab

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/net/dns/dnsmessage"
)

var guestMAC = net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}

// startLab runs a lab with cfg and one in-process guest (addr may be invalid for DHCP tests).
func startLab(t *testing.T, cfg Config, addr netip.Addr) (*Lab, *Guest) {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	g, err := ConnectGuest(l, guestMAC, addr)
	if err != nil {
		l.Close()
		t.Fatalf("ConnectGuest: %v", err)
	}
	t.Cleanup(func() {
		g.Close()
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l, g
}

// exchange sends a DHCP message from the guest and returns the next reply.
func exchange(t *testing.T, c net.PacketConn, m *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	t.Helper()
	if _, err := c.WriteTo(m.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: 67}); err != nil {
		t.Fatalf("send %s: %v", m.MessageType(), err)
	}
	buf := make([]byte, 1500)
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("reply to %s: %v", m.MessageType(), err)
	}
	r, err := dhcpv4.FromBytes(buf[:n])
	if err != nil {
		t.Fatalf("parse reply to %s: %v", m.MessageType(), err)
	}
	return r
}

func TestDHCP(t *testing.T) {
	var pcap bytes.Buffer
	cfg := Config{Pcap: &pcap, DHCP: DHCPConfig{Bootfile: "boot/k.img", ServerName: "tftp.lab", Domain: "lab",
		ConfigFile: "s390x.cfg", PathPrefix: "cfg/", RebootTime: 30, NAKs: 1}}
	l, g := startLab(t, cfg, netip.Addr{})
	c, err := g.UDP(68)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	disc, err := dhcpv4.NewDiscovery(guestMAC)
	if err != nil {
		t.Fatal(err)
	}
	offer := exchange(t, c, disc)
	if offer.MessageType() != dhcpv4.MessageTypeOffer || !offer.YourIPAddr.Equal(net.IP(FirstLease.AsSlice())) {
		t.Fatalf("OFFER = %s yiaddr %s, want OFFER of %s", offer.MessageType(), offer.YourIPAddr, FirstLease)
	}
	checks := []struct {
		code dhcpv4.OptionCode
		want []byte
	}{
		{dhcpv4.OptionSubnetMask, []byte{255, 255, 255, 0}},
		{dhcpv4.OptionRouter, LabAddr.AsSlice()},
		{dhcpv4.OptionDomainNameServer, LabAddr.AsSlice()},
		{dhcpv4.OptionDomainName, []byte("lab")},
		{dhcpv4.OptionServerIdentifier, LabAddr.AsSlice()},
		{dhcpv4.OptionTFTPServerName, []byte("tftp.lab")},
		{dhcpv4.OptionBootfileName, []byte("boot/k.img")},
		{dhcpv4.GenericOptionCode(209), []byte("s390x.cfg")},
		{dhcpv4.GenericOptionCode(210), []byte("cfg/")},
		{dhcpv4.GenericOptionCode(211), []byte{0, 0, 0, 30}},
	}
	for _, ck := range checks {
		if got := offer.Options.Get(ck.code); !bytes.Equal(got, ck.want) {
			t.Errorf("OFFER option %v = %q, want %q", ck.code, got, ck.want)
		}
	}
	req, err := dhcpv4.NewRequestFromOffer(offer)
	if err != nil {
		t.Fatal(err)
	}
	if r := exchange(t, c, req); r.MessageType() != dhcpv4.MessageTypeNak {
		t.Errorf("first REQUEST answered with %s, want NAK (NAKs: 1)", r.MessageType())
	}
	ack := exchange(t, c, req)
	if ack.MessageType() != dhcpv4.MessageTypeAck || ack.BootFileName != "boot/k.img" {
		t.Errorf("second REQUEST answered with %s file %q, want ACK with the bootfile", ack.MessageType(), ack.BootFileName)
	}
	log := l.EventText()
	for _, w := range []string{"dhcp: DISCOVER from 52:54:00:12:34:56", "dhcp: NAK to", "dhcp: ACK to 52:54:00:12:34:56 from 10.0.2.2 yiaddr 10.0.2.15"} {
		if !strings.Contains(log, w) {
			t.Errorf("lab log lacks %q:\n%s", w, log)
		}
	}
	if pcap.Len() < 24+4*(16+300) {
		t.Errorf("pcap holds %d bytes, want the header and 4 DHCP frames", pcap.Len())
	}
}

func TestDHCPSecondServerOffersFirst(t *testing.T) {
	_, g := startLab(t, Config{DHCP: DHCPConfig{Bootfile: "a", Second: &SecondDHCP{Bootfile: "b"}, RebootTime: -1}}, netip.Addr{})
	c, err := g.UDP(68)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	disc, _ := dhcpv4.NewDiscovery(guestMAC)
	offer := exchange(t, c, disc)
	if sid := offer.ServerIdentifier(); !sid.Equal(net.IP(SecondAddr.AsSlice())) || offer.BootFileName != "b" {
		t.Fatalf("first OFFER from %s file %q, want 10.0.2.3 with b", sid, offer.BootFileName)
	}
	req, _ := dhcpv4.NewRequestFromOffer(offer)
	c.SetReadDeadline(time.Now().Add(time.Second))
	// Skip the primary's late OFFER, then expect the second server's ACK.
	for i := 0; i < 3; i++ {
		r := exchange(t, c, req)
		if r.MessageType() == dhcpv4.MessageTypeAck {
			if !r.ServerIdentifier().Equal(net.IP(SecondAddr.AsSlice())) || r.BootFileName != "b" {
				t.Errorf("ACK from %s file %q, want 10.0.2.3 with b", r.ServerIdentifier(), r.BootFileName)
			}
			return
		}
	}
	t.Errorf("no ACK for a REQUEST to the second server")
}

func testFiles() map[string]*File {
	big := make([]byte, 300_000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	return map[string]*File{
		"big.bin":   {Data: big, ErrorAfter: -1, Truncate: -1},
		"exact.bin": {Data: big[:1428*4], ErrorAfter: -1, Truncate: -1}, // ends with an empty block
		"err.bin":   {Data: big, ErrorAfter: 100_000, Truncate: -1},
		"short.bin": {Data: big, ErrorAfter: -1, Truncate: 5000},
		// the ERROR falls in the last, short block (blksize 1428: bytes 4284..4999)
		"errlast.bin": {Data: big[:5000], ErrorAfter: 4500, Truncate: -1},
	}
}

func TestTFTPServers(t *testing.T) {
	files := testFiles()
	for _, pin := range []bool{false, true} {
		name := map[bool]string{false: "windowed", true: "pin"}[pin]
		t.Run(name, func(t *testing.T) {
			l, g := startLab(t, Config{PinTFTP: pin, Files: files}, FirstLease)
			c, err := g.UDP(2001)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			server := netip.AddrPortFrom(LabAddr, 69)
			tests := []struct {
				file              string
				blksize, window   int
				want              []byte
				wantErr, wantBlks string
			}{
				{file: "big.bin", blksize: 1428, want: files["big.bin"].Data},
				{file: "/big.bin", blksize: 0, want: files["big.bin"].Data},
				{file: "exact.bin", blksize: 1428, want: files["exact.bin"].Data},
				{file: "short.bin", blksize: 1428, want: files["big.bin"].Data[:5000]},
				{file: "err.bin", blksize: 1428, wantErr: "server ERROR"},
				{file: "errlast.bin", blksize: 1428, wantErr: "server ERROR"},
				{file: "nothere", blksize: 1428, wantErr: "server ERROR 1"},
			}
			if !pin {
				tests = append(tests,
					struct {
						file              string
						blksize, window   int
						want              []byte
						wantErr, wantBlks string
					}{file: "big.bin", blksize: 1468, window: 8, want: files["big.bin"].Data})
			}
			for _, tt := range tests {
				got, st, err := TFTPGet(c, server, tt.file, tt.blksize, tt.window)
				if tt.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
						t.Errorf("TFTPGet(%q) error = %v, want %q", tt.file, err, tt.wantErr)
					}
					continue
				}
				if err != nil || !bytes.Equal(got, tt.want) {
					t.Errorf("TFTPGet(%q, %d, %d) = %d bytes, %v; want %d bytes", tt.file, tt.blksize, tt.window, len(got), err, len(tt.want))
					continue
				}
				if st.Tsize != int64(len(tt.want)) {
					t.Errorf("TFTPGet(%q) tsize = %d, want %d", tt.file, st.Tsize, len(tt.want))
				}
				if tt.window > 0 && st.Windowsize != tt.window {
					t.Errorf("TFTPGet(%q) windowsize = %d, want %d", tt.file, st.Windowsize, tt.window)
				}
			}
			if log := l.EventText(); !strings.Contains(log, `tftp: RRQ "nothere"`) {
				t.Errorf("lab log lacks the failed RRQ:\n%s", log)
			}
		})
	}
}

// TestTFTPWindowedUnderLoss drives the windowed server through a lossy, duplicating, reordering
// link and checks the file arrives intact.
func TestTFTPWindowedUnderLoss(t *testing.T) {
	files := testFiles()
	_, g := startLab(t, Config{Files: files, Faults: Faults{Loss: 3, Dup: 3, Reorder: 3, Seed: 1, Scope: ScopeTFTP}}, FirstLease)
	c, err := g.UDP(2001)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, _, err := TFTPGet(c, netip.AddrPortFrom(LabAddr, 69), "big.bin", 1468, 4)
	if err != nil || !bytes.Equal(got, files["big.bin"].Data) {
		t.Fatalf("TFTPGet over a lossy link = %d bytes, %v", len(got), err)
	}
}

func TestHTTP(t *testing.T) {
	files := testFiles()
	l, g := startLab(t, Config{Files: files}, FirstLease)
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return g.DialTCP(ctx, LabAddr, 80)
	}}, Timeout: 10 * time.Second}
	resp, err := client.Get("http://10.0.2.2/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || resp.ContentLength != int64(len(files["big.bin"].Data)) || !bytes.Equal(body, files["big.bin"].Data) {
		t.Errorf("GET big.bin = %d, Content-Length %d, %d bytes, %v", resp.StatusCode, resp.ContentLength, len(body), err)
	}
	req, _ := http.NewRequest("GET", "http://10.0.2.2/big.bin", nil)
	req.Header.Set("Range", "bytes=1000-1999")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 206 || !bytes.Equal(body, files["big.bin"].Data[1000:2000]) || resp.Header.Get("Content-Range") != "bytes 1000-1999/300000" {
		t.Errorf("Range GET = %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Range"), len(body))
	}
	resp, err = client.Get("http://10.0.2.2/nothere")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("GET nothere = %d, want 404", resp.StatusCode)
	}
	if log := l.EventText(); !strings.Contains(log, `http: GET /big.bin range "bytes=1000-1999"`) {
		t.Errorf("lab log lacks the range request:\n%s", log)
	}
}

func TestDNS(t *testing.T) {
	_, g := startLab(t, Config{DNS: map[string]netip.Addr{"tftp.lab.example": LabAddr}}, FirstLease)
	c, err := g.UDP(0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ask := func(name string) dnsmessage.Message {
		t.Helper()
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 7, RecursionDesired: true})
		b.StartQuestions()
		b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
		q, _ := b.Finish()
		c.WriteTo(q, &net.UDPAddr{IP: net.IP(LabAddr.AsSlice()), Port: 53})
		buf := make([]byte, 1500)
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatalf("DNS %s: %v", name, err)
		}
		var m dnsmessage.Message
		if err := m.Unpack(buf[:n]); err != nil {
			t.Fatalf("DNS %s: unpack: %v", name, err)
		}
		return m
	}
	m := ask("TFTP.lab.example.")
	if m.ID != 7 || len(m.Answers) != 1 || m.Answers[0].Body.(*dnsmessage.AResource).A != LabAddr.As4() {
		t.Errorf("A TFTP.lab.example = %+v", m)
	}
	if m := ask("other.example."); m.RCode != dnsmessage.RCodeNameError || len(m.Answers) != 0 {
		t.Errorf("A other.example = rcode %v, %d answers; want NXDOMAIN", m.RCode, len(m.Answers))
	}
}

func TestNegotiate(t *testing.T) {
	r, err := parseRRQ(append(binary.BigEndian.AppendUint16(nil, tftpRRQ),
		"f\x00OCTET\x00BLKSIZE\x0065464\x00windowsize\x000\x00tsize\x000\x00timeout\x003\x00x\x00y\x00"...))
	if err != nil {
		t.Fatal(err)
	}
	n := negotiate(r, 1234)
	want := "\x00\x06blksize\x001468\x00tsize\x001234\x00timeout\x003\x00"
	if string(n.oack) != want || n.blksize != 1468 || n.windowsize != 1 || n.timeout != 3*time.Second {
		t.Errorf("negotiate = %q %+v, want OACK %q (windowsize 0 refused, unknown x ignored)", n.oack, n, want)
	}
	for _, bad := range []string{"\x00\x01f\x00octet", "\x00\x01\x00octet\x00", "\x00\x01f\x00mail\x00", "\x00\x01f\x00octet\x00blksize\x00", "\x00\x02f\x00octet\x00"} {
		if _, err := parseRRQ([]byte(bad)); err == nil {
			t.Errorf("parseRRQ(%q) accepted", bad)
		}
	}
}

func TestWritesPcapPerRun(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "x.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() }) // after the lab's own cleanup (LIFO)
	_, g := startLab(t, Config{Pcap: f, Files: testFiles()}, FirstLease)
	c, _ := g.UDP(2001)
	defer c.Close()
	if _, _, err := TFTPGet(c, netip.AddrPortFrom(LabAddr, 69), "short.bin", 1428, 0); err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	if st.Size() < 5000 {
		t.Errorf("pcap is %d bytes after a 5000-byte transfer", st.Size())
	}
}

func TestDHCPLeasesPerMAC(t *testing.T) {
	l, err := New(Config{DHCP: DHCPConfig{RebootTime: -1, Leases: map[string]netip.Addr{"52:54:00:00:00:02": netip.MustParseAddr("10.0.2.99")}}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d := newDHCPServer(l, l.cfg.DHCP)
	tests := []struct{ mac, want string }{
		{"52:54:00:00:00:01", "10.0.2.15"},
		{"52:54:00:00:00:02", "10.0.2.99"}, // fixed
		{"52:54:00:00:00:03", "10.0.2.16"},
		{"52:54:00:00:00:01", "10.0.2.15"}, // stable
	}
	for _, tt := range tests {
		if got := d.lease(tt.mac).String(); got != tt.want {
			t.Errorf("lease(%s) = %s, want %s", tt.mac, got, tt.want)
		}
	}
}
