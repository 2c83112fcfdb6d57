package lab

import (
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// startDNS answers A queries on 10.0.2.2:53 from Config.DNS; other names get NXDOMAIN.
func (l *Lab) startDNS() error {
	conn, err := l.udpConn(LabAddr, 53)
	if err != nil {
		return err
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, peer, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			resp, q, ok := l.answerDNS(buf[:n])
			if !ok {
				l.Logf("dns: malformed query from %v", peer)
				continue
			}
			l.Logf("dns: query %s %s from %v", q.Type, q.Name, peer)
			conn.WriteTo(resp, peer)
		}
	}()
	return nil
}

// answerDNS builds the reply to one query message.
func (l *Lab) answerDNS(msg []byte) ([]byte, dnsmessage.Question, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return nil, dnsmessage.Question{}, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, dnsmessage.Question{}, false
	}
	name := strings.ToLower(strings.TrimSuffix(q.Name.String(), "."))
	addr, found := l.cfg.DNS[name]
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !found || q.Type != dnsmessage.TypeA || !addr.Is4() {
		if !found {
			rh.RCode = dnsmessage.RCodeNameError
		}
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	if found && q.Type == dnsmessage.TypeA && addr.Is4() {
		b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60},
			dnsmessage.AResource{A: addr.As4()})
	}
	out, err := b.Finish()
	if err != nil {
		return nil, q, false
	}
	return out, q, true
}
