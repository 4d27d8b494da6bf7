package xmpppeer

import (
	"encoding/base64"
	"encoding/xml"
	"strconv"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"chatconnect.dev/loadgen/internal/metrics"
	"chatconnect.dev/loadgen/internal/peer"
)

const nsPing = "urn:xmpp:ping"

// HandleXMPP is the reader: mellium's Serve calls it for every top-level element, one at
// a time, on the connection's goroutine. What it writes through t is flushed when it
// returns. It must answer quickly: ejabberd drops a client that leaves its <r/> or ping
// unanswered.
func (c *conn) HandleXMPP(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	// Taken before anything is parsed: the delivery time of a message.
	at := time.Now()
	switch start.Name.Space {
	case stanza.NSClient:
		if c.smOn {
			c.inbound.Add(1)
		}
		switch start.Name.Local {
		case "message":
			return c.onMessage(t, start, at)
		case "iq":
			return c.onIQ(t, start)
		}
		// Presence (our own, echoed back) needs nothing; Serve skips its content.
		return nil
	case nsSM:
		return c.onSM(t, start)
	}
	return nil
}

// inMessage is the part of a <message/> the benchmark reads.
type inMessage struct {
	Type  string        `xml:"type,attr"`
	ID    string        `xml:"id,attr"`
	Body  *string       `xml:"jabber:client body"`
	Error *stanza.Error `xml:"jabber:client error"`
}

func (c *conn) onMessage(t xmlstream.TokenReadEncoder, start *xml.StartElement, at time.Time) error {
	var m inMessage
	if err := decodeElement(t, start, &m); err != nil {
		return err
	}
	if m.Type == "error" {
		c.acks.bounced(m.ID, stanzaError(m.Error, "message "+m.ID+" from "+c.user.addr))
		return nil
	}
	if m.Body == nil || c.handler == nil {
		return nil
	}
	payload, err := base64.StdEncoding.DecodeString(*m.Body)
	if err != nil {
		// Not ours (a server notice?): hand it on as is, so the scenario counts it stray.
		payload = []byte(*m.Body)
	}
	c.handler(peer.Delivery{Payload: payload, At: at})
	return nil
}

// inIQ is the part of an <iq/> the client needs to answer it.
type inIQ struct {
	Type string    `xml:"type,attr"`
	ID   string    `xml:"id,attr"`
	From string    `xml:"from,attr"`
	Ping *struct{} `xml:"urn:xmpp:ping ping"`
}

// onIQ answers requests: pings (XEP-0199, ejabberd's mod_ping keepalive) with a result,
// anything else with service-unavailable. The answer goes through t, so Serve does not
// add its own, and is numbered like every stanza we send.
func (c *conn) onIQ(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	var iq inIQ
	if err := decodeElement(t, start, &iq); err != nil {
		return err
	}
	if iq.Type != "get" && iq.Type != "set" {
		return nil
	}
	// Serve blanks a "from" that is our own bare JID; the reply then goes to the server.
	to, err := jid.Parse(iq.From)
	if err != nil && iq.From != "" {
		return nil
	}
	reply := stanza.IQ{ID: iq.ID, To: to, Type: stanza.ResultIQ}
	body := reply.Wrap(nil)
	if iq.Ping == nil {
		reply.Type = stanza.ErrorIQ
		unavailable := stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable}
		body = reply.Wrap(unavailable.TokenReader())
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, _, err := c.acks.add("", false); err != nil {
		return nil
	}
	_, err = xmlstream.Copy(t, body)
	return err
}

// onSM handles stream management: the answer to <enable/>, the server's <r/> (answered
// with how many stanzas we have read), and its <a/> (which releases waiting Sends).
func (c *conn) onSM(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	switch start.Name.Local {
	case "enabled":
		c.smOn = true
		c.enabled <- nil
	case "failed":
		var failed struct {
			Condition struct {
				XMLName xml.Name
			} `xml:",any"`
		}
		_ = decodeElement(t, start, &failed)
		c.enabled <- &metrics.Coded{
			Code: "XMPP_SM", Reason: failed.Condition.XMLName.Local,
			Msg: "stream management refused for " + c.user.addr,
		}
	case "r":
		a := smAnswer(c.inbound.Load())
		return writeTokens(t, a, a.End())
	case "a":
		h, err := strconv.ParseUint(attrValue(start, "h"), 10, 32)
		if err != nil {
			return nil
		}
		if c.acks.answered(uint32(h)) {
			return writeTokens(t, smRequest, smRequest.End())
		}
	}
	return nil
}

// decodeElement unmarshals the element Serve started (start) from the rest of it (r).
// The decoder must see the start token itself, or it rejects the end token.
func decodeElement(r xml.TokenReader, start *xml.StartElement, v any) error {
	return xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r)).Decode(v)
}

func writeTokens(w xmlstream.TokenWriter, toks ...xml.Token) error {
	for _, tok := range toks {
		if err := w.EncodeToken(tok); err != nil {
			return err
		}
	}
	return nil
}

func attrValue(start *xml.StartElement, local string) string {
	for _, a := range start.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// stanzaError names a bounced stanza by its error condition ("XMPP/service-unavailable").
func stanzaError(e *stanza.Error, what string) error {
	if e == nil {
		return &metrics.Coded{Code: "XMPP", Reason: "undefined-condition", Msg: what}
	}
	msg := what
	for _, text := range e.Text {
		msg += ": " + text
		break
	}
	return &metrics.Coded{Code: "XMPP", Reason: string(e.Condition), Msg: msg}
}
