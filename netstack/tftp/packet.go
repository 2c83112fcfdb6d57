package tftp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Opcodes, RFC 1350 §5 and RFC 2347 (OACK).
const (
	opRRQ   = 1 // RRQ
	opWRQ   = 2 // WRQ
	opDATA  = 3 // DATA
	opACK   = 4 // ACK
	opERROR = 5 // ERROR
	opOACK  = 6 // OACK, RFC 2347
)

// Error codes, RFC 1350 Appendix and RFC 2347 (code 8).
const (
	ErrCodeUndefined     = 0 // Not defined, see error message (if any).
	ErrCodeNotFound      = 1 // File not found.
	ErrCodeAccess        = 2 // Access violation.
	ErrCodeDiskFull      = 3 // Disk full or allocation exceeded.
	ErrCodeIllegalOp     = 4 // Illegal TFTP operation.
	ErrCodeUnknownTID    = 5 // Unknown transfer ID.
	ErrCodeFileExists    = 6 // File already exists.
	ErrCodeNoSuchUser    = 7 // No such user.
	ErrCodeOptionRefused = 8 // Option negotiation refused, RFC 2347.
)

// Option limits.
const (
	minBlockSize   = 8     // RFC 2348 §2: "between 8 and 65464"
	maxBlockSize   = 65464 // RFC 2348 §2
	plainBlockSize = 512   // RFC 1350 §2
	maxWindowSize  = 65535 // RFC 7440 §3: "between 1 and 65535"
	headerLen      = 4     // opcode + block number / error code
	// maxOACKOptions bounds the options read from one OACK. The client asks at most blksize, tsize and
	// windowsize, and each may be answered once (RFC 2347 §3), so more can only be an attack: a 64 KiB OACK of
	// short names would otherwise cost ~10^8 comparisons in the repeat check.
	maxOACKOptions = 8
)

// packet is a view of one TFTP datagram in network byte order (RFC 1350 §5).
type packet []byte

func (p packet) opcode() uint16 {
	if len(p) < 2 {
		return 0
	}
	return binary.BigEndian.Uint16(p)
}

// block is the block number of a DATA or ACK packet.
func (p packet) block() uint16 { return binary.BigEndian.Uint16(p[2:]) }

// payload is the data of a DATA packet.
func (p packet) payload() []byte { return p[headerLen:] }

// appendRRQ appends an RRQ for name in octet mode with the given options (in order) to b.
func appendRRQ(b []byte, name string, opts []option) []byte {
	b = binary.BigEndian.AppendUint16(b, opRRQ)
	b = append(b, name...)
	b = append(b, 0)
	b = append(b, "octet"...)
	b = append(b, 0)
	for _, o := range opts {
		b = append(b, o.name...)
		b = append(b, 0)
		b = append(b, o.value...)
		b = append(b, 0)
	}
	return b
}

// appendACK appends an ACK for block to b.
func appendACK(b []byte, block uint16) []byte {
	b = binary.BigEndian.AppendUint16(b, opACK)
	return binary.BigEndian.AppendUint16(b, block)
}

// appendERROR appends an ERROR packet to b.
func appendERROR(b []byte, code uint16, msg string) []byte {
	b = binary.BigEndian.AppendUint16(b, opERROR)
	b = binary.BigEndian.AppendUint16(b, code)
	b = append(b, msg...)
	return append(b, 0)
}

// option is one name/value pair of an RRQ or OACK (RFC 2347 §2). Names compare case-insensitively.
type option struct {
	name, value string
}

var (
	errShortPacket = errors.New("packet too short")
	errNoNUL       = errors.New("string not NUL-terminated")
)

// parseOACK decodes the option list of an OACK packet (RFC 2347 §2): name NUL value NUL, repeated.
// Names are lower-cased; a repeated name is an error.
func parseOACK(p packet) ([]option, error) {
	if len(p) < 2 || p.opcode() != opOACK {
		return nil, errors.New("not an OACK")
	}
	rest := p[2:]
	var opts []option
	for len(rest) > 0 {
		name, r, err := cstring(rest)
		if err != nil {
			return nil, fmt.Errorf("OACK option name: %w", err)
		}
		value, r, err := cstring(r)
		if err != nil {
			return nil, fmt.Errorf("OACK option %q value: %w", name, err)
		}
		rest = r
		name = strings.ToLower(name)
		if name == "" {
			return nil, errors.New("OACK option with empty name")
		}
		for _, o := range opts {
			if o.name == name {
				return nil, fmt.Errorf("OACK option %q repeated", name)
			}
		}
		if len(opts) == maxOACKOptions {
			return nil, fmt.Errorf("OACK with more than %d options", maxOACKOptions)
		}
		opts = append(opts, option{name, value})
	}
	return opts, nil
}

// parseERROR decodes an ERROR packet (RFC 1350 §5). A missing terminating NUL is tolerated (some servers omit it);
// the message is cut at the first NUL and stripped of control characters so it is safe to print.
func parseERROR(p packet) (*Error, error) {
	if len(p) < headerLen || p.opcode() != opERROR {
		return nil, errShortPacket
	}
	msg := []byte(p[headerLen:])
	for i, c := range msg {
		if c == 0 {
			msg = msg[:i]
			break
		}
	}
	clean := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, string(msg))
	return &Error{Code: binary.BigEndian.Uint16(p[2:]), Message: clean}, nil
}

// cstring splits b at the first NUL.
func cstring(b []byte) (string, []byte, error) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), b[i+1:], nil
		}
	}
	return "", nil, errNoNUL
}

// parseDecimal parses an option value: ASCII decimal digits only (RFC 2348/2349/7440 values), no sign, no spaces.
func parseDecimal(s string) (int64, error) {
	if s == "" || len(s) > 18 {
		return 0, fmt.Errorf("bad number %q", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("bad number %q", s)
		}
	}
	return strconv.ParseInt(s, 10, 64)
}
