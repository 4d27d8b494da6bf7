package xmpppeer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"mellium.im/xmpp/jid"

	"chatconnect.dev/loadgen/internal/peer"
)

// Provision registers n fresh users, cfg.ProvisionConcurrency at a time, with
// mod_http_api's `register` command: one HTTP request per user on kept-alive
// connections, instead of one ejabberdctl process (an Erlang VM start) per user.
func (p *Peer) Provision(ctx context.Context, n int, progress func(done int)) ([]peer.User, error) {
	// A random prefix per run keeps names unique against a spool that was not purged.
	prefix, err := runPrefix()
	if err != nil {
		return nil, err
	}
	users, err := peer.ProvisionAll(ctx, n, p.cfg.ProvisionConcurrency, progress,
		func(ctx context.Context, i int) (peer.User, error) {
			return p.register(ctx, fmt.Sprintf("%s-%06d", prefix, i))
		})
	if err != nil {
		return nil, fmt.Errorf("registering bench users over %s: %w", p.cfg.APIURL, err)
	}
	return users, nil
}

func (p *Peer) register(ctx context.Context, local string) (*User, error) {
	addr, err := jid.New(local, p.cfg.Domain, "")
	if err != nil {
		return nil, fmt.Errorf("user name %q@%q: %w", local, p.cfg.Domain, err)
	}
	password, err := randomString(12)
	if err != nil {
		return nil, err
	}
	args := map[string]string{"user": local, "host": p.cfg.Domain, "password": password}
	if err := p.call(ctx, "register", args, nil); err != nil {
		return nil, err
	}
	return &User{JID: addr, addr: addr.String(), password: password}, nil
}

// call runs one ejabberd command over mod_http_api; out (if not nil) receives the JSON
// result. ejabberd answers 200 on success and a JSON {status, code, message} otherwise.
func (p *Peer) call(ctx context.Context, command string, args any, out any) error {
	body, err := json.Marshal(args)
	if err != nil {
		return err
	}
	url := strings.TrimSuffix(p.cfg.APIURL, "/") + "/" + command
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Read to the end so the connection is reused.
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d: %s", command, resp.StatusCode, bytes.TrimSpace(data))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

func runPrefix() (string, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "bench" + hex.EncodeToString(b[:]), nil
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
