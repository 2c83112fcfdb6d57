package tftp

import (
	"errors"
	"fmt"
)

// Sentinels for callers that branch on the outcome (errors.Is).
var (
	// ErrNotFound matches an ERROR packet with code 1 (file not found). The pxelinux.cfg probe skips it.
	ErrNotFound = errors.New("file not found")
	// ErrTooLarge means the file is bigger than Options.MaxSize (known from tsize or found while receiving).
	ErrTooLarge = errors.New("file exceeds size limit")
	// ErrTimeout means the server stopped answering for Options.Retries retransmissions.
	ErrTimeout = errors.New("no response from server")
	// ErrProtocol means the server broke the protocol badly enough to abort (bad OACK, too many bad packets).
	ErrProtocol = errors.New("protocol violation")
)

// Error is an ERROR packet received from the server (RFC 1350 §5).
type Error struct {
	Code    uint16
	Message string // as sent by the server, control characters removed
}

var codeText = [...]string{
	ErrCodeUndefined:     "undefined error",
	ErrCodeNotFound:      "file not found",
	ErrCodeAccess:        "access violation",
	ErrCodeDiskFull:      "disk full or allocation exceeded",
	ErrCodeIllegalOp:     "illegal TFTP operation",
	ErrCodeUnknownTID:    "unknown transfer ID",
	ErrCodeFileExists:    "file already exists",
	ErrCodeNoSuchUser:    "no such user",
	ErrCodeOptionRefused: "option negotiation refused",
}

// Error formats the server's message and code, e.g. `file not found (code 1)`.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		if int(e.Code) < len(codeText) {
			msg = codeText[e.Code]
		} else {
			msg = "error"
		}
	}
	return fmt.Sprintf("%s (code %d)", msg, e.Code)
}

// Is makes errors.Is(err, ErrNotFound) true for code 1.
func (e *Error) Is(target error) bool {
	return target == ErrNotFound && e.Code == ErrCodeNotFound
}
