// Package httpfetch downloads a boot file over HTTP or HTTPS with net/http, writing it into an io.WriterAt so the
// data lands at its final address.
//
// Specs: RFC 9110 (HTTP semantics: redirects §15.4, Range/Content-Range §14, If-Range §13.1.5) and RFC 9112
// (HTTP/1.1). HTTP/2 is not used: the transport is given a plain dial function, which keeps it on HTTP/1.1.
//
// The client never opens sockets itself: Client.Dial is the gVisor stack's TCP dialer (gonet.DialContextTCP) in the
// guest and net.Dialer.DialContext on the host. Behaviour:
//   - Content-Length is read before any body byte, so a file larger than Client.MaxSize is refused up front
//     (ErrTooLarge). Without Content-Length the limit is enforced while reading.
//   - Compression is turned off (Accept-Encoding is not sent), so Content-Length is the size of the file.
//   - Client.ResponseTimeout bounds the TCP connect, the wait for the response headers and every read stall; the
//     header block may be at most 64 KiB.
//   - Redirects (301, 302, 303, 307, 308) are followed up to Client.MaxRedirects; an https→http downgrade is refused.
//   - When the connection drops before Content-Length bytes have arrived, the download resumes with
//     "Range: bytes=N-" and "If-Range" (the ETag, or Last-Modified) against the final URL, up to Client.Resumes
//     times. A 206 must start exactly at N and report the same total length; a 200 means the server ignored the
//     range or the file changed, and the download restarts from offset 0.
//   - HTTPS verifies the server against Client.RootCAs, or, when that is nil, against the CA bundle compiled into
//     the binary from roots.pem (see BuiltinRoots and docs/protocols.md).
package httpfetch
