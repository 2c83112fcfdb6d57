package dhcpv4

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"

	dhcp "github.com/insomniacslk/dhcp/dhcpv4"
)

func ackBytes(t testing.TB, mods ...dhcp.Modifier) []byte {
	t.Helper()
	req, err := dhcp.NewDiscovery(clientMAC)
	if err != nil {
		t.Fatal(err)
	}
	return replyTo(req, dhcp.MessageTypeAck, "10.0.2.2", mods...).ToBytes()
}

// withOverload writes raw option bytes into the file and sname fields and sets option 52.
func withOverload(b []byte, file, sname []byte) []byte {
	b = append([]byte(nil), b...)
	if file != nil {
		copy(b[offFile:offFile+lenFile], append(file, 255))
	}
	if sname != nil {
		copy(b[offSname:offSname+lenSname], append(sname, 255))
	}
	return b
}

func TestParseReply(t *testing.T) {
	plain := ackBytes(t, dhcp.WithGeneric(dhcp.OptionOptionOverload, []byte{3}))
	over := withOverload(plain,
		[]byte("\x43\x0akernel.img\x00\x00\x00"), // 67 "kernel.img", then pad
		[]byte("\x42\x08tftp.lab"))               // 66 "tftp.lab"
	fileOnly := withOverload(ackBytes(t, dhcp.WithGeneric(dhcp.OptionOptionOverload, []byte{1}),
		dhcp.WithServerIP(net.IPv4zero)), []byte("\xd1\x07pxe.cfg"), nil)
	bootp := ackBytes(t, dhcp.WithServerIP(net.ParseIP("10.0.2.4")))[:headerSize+64]
	copy(bootp[offCookie:], make([]byte, 64)) // vendor area without the cookie
	copy(bootp[offFile:], "boot/kernel\x00")
	copy(bootp[offSname:], "bootserver\x00")
	badOverload := ackBytes(t, dhcp.WithGeneric(dhcp.OptionOptionOverload, []byte{7}))
	truncatedOverload := withOverload(plain, []byte("\x43\x7f"), nil)

	for _, tt := range []struct {
		name    string
		in      []byte
		want    string
		wantErr string
	}{
		{"plain ACK", ackBytes(t, dhcp.WithOption(dhcp.OptBootFileName("k"))),
			`addr=10.0.2.15/24 router=10.0.2.2 dns=[10.0.2.3] sid=10.0.2.2 next=10.0.2.2 sname="" file="k" 66="" 209="" 210="" 211=0 lease=1h0m0s bootp=false`, ""},
		{"overload both", over,
			`addr=10.0.2.15/24 router=10.0.2.2 dns=[10.0.2.3] sid=10.0.2.2 next=10.0.2.2 sname="" file="kernel.img" 66="tftp.lab" 209="" 210="" 211=0 lease=1h0m0s bootp=false`, ""},
		{"overload file", fileOnly,
			`addr=10.0.2.15/24 router=10.0.2.2 dns=[10.0.2.3] sid=10.0.2.2 next=invalid IP sname="" file="" 66="" 209="pxe.cfg" 210="" 211=0 lease=1h0m0s bootp=false`, ""},
		{"BOOTP", bootp,
			`addr=10.0.2.15/8 router=invalid IP dns=[] sid=invalid IP next=10.0.2.4 sname="bootserver" file="boot/kernel" 66="" 209="" 210="" 211=0 lease=0s bootp=true`, ""},
		{"bad overload value", badOverload, "", "option 52 (overload) value 07 invalid"},
		{"truncated overloaded option", truncatedOverload, "", "options overloaded into file: "},
		{"short", plain[:100], "", "message of 100 bytes, shorter than the 236-byte header"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, bootp, err := parseReply(tt.in)
			if err == nil {
				var l *Lease
				l, err = newLease(m, bootp)
				if err == nil {
					if got := summary(l); got != tt.want {
						t.Errorf("parseReply lease\n got %s\nwant %s", got, tt.want)
					}
					return
				}
			}
			if tt.wantErr == "" || err == nil || len(err.Error()) < len(tt.wantErr) || err.Error()[:len(tt.wantErr)] != tt.wantErr {
				t.Errorf("parseReply = %v, want error starting %q", err, tt.wantErr)
			}
		})
	}
}

func TestBootServer(t *testing.T) {
	lookup := func(ctx context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "tftp.lab":
			return []netip.Addr{mustAddr("fec0::2"), mustAddr("10.0.2.20")}, nil
		case "v6only.lab":
			return []netip.Addr{mustAddr("fec0::2")}, nil
		}
		return nil, errors.New("no such host")
	}
	for _, tt := range []struct {
		name      string
		l         Lease
		nilLookup bool
		want      string
	}{
		{name: "66 dotted quad", l: Lease{TFTPServer: "10.0.2.4", NextServer: mustAddr("10.0.2.2")}, want: "10.0.2.4 option 66"},
		{name: "66 name", l: Lease{TFTPServer: "tftp.lab", NextServer: mustAddr("10.0.2.2")}, want: "10.0.2.20 option 66 via DNS"},
		{name: "66 unresolvable falls back to siaddr", l: Lease{TFTPServer: "nope.lab", NextServer: mustAddr("10.0.2.2")}, want: "10.0.2.2 siaddr"},
		{name: "66 without IPv4", l: Lease{TFTPServer: "v6only.lab", ServerID: mustAddr("10.0.2.9")}, want: "10.0.2.9 server identifier"},
		{name: "66 name without resolver", l: Lease{TFTPServer: "tftp.lab"}, nilLookup: true,
			want: `error: no boot server in the DHCP reply: option 66 "tftp.lab" is a name and there is no resolver`},
		{name: "siaddr", l: Lease{NextServer: mustAddr("10.0.2.2"), ServerName: "other"}, want: "10.0.2.2 siaddr"},
		{name: "sname quad", l: Lease{ServerName: "10.0.2.5"}, want: "10.0.2.5 sname"},
		{name: "sname name", l: Lease{ServerName: "tftp.lab"}, want: "10.0.2.20 sname via DNS"},
		{name: "server id", l: Lease{ServerID: mustAddr("10.0.2.9")}, want: "10.0.2.9 server identifier"},
		{name: "nothing", l: Lease{}, want: "error: no boot server in the DHCP reply"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lk := LookupFunc(lookup)
			if tt.nilLookup {
				lk = nil
			}
			bs, err := tt.l.BootServer(context.Background(), lk)
			got := fmt.Sprintf("%v %s", bs.Addr, bs.Source)
			if err != nil {
				got = "error: " + err.Error()
			}
			if got != tt.want {
				t.Errorf("BootServer(%+v) = %s, want %s", tt.l, got, tt.want)
			}
		})
	}
}

// FuzzParseReply checks that server messages never panic the parser and that any accepted lease is sane.
func FuzzParseReply(f *testing.F) {
	plain := ackBytes(f, dhcp.WithGeneric(dhcp.OptionOptionOverload, []byte{3}))
	f.Add(plain)
	f.Add(withOverload(plain, []byte("\x43\x0akernel.img"), []byte("\x42\x08tftp.lab")))
	f.Add(plain[:headerSize])
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1500 {
			return
		}
		m, bootp, err := parseReply(b)
		if err != nil {
			return
		}
		l, err := newLease(m, bootp)
		if err != nil {
			return
		}
		if !l.Addr.IsValid() || !l.Addr.Addr().Is4() || l.Addr.Addr().IsUnspecified() {
			t.Errorf("parseReply(% x) gave lease address %v", b, l.Addr)
		}
	})
}
