// Command loadgen drives ChatConnect (through stubs generated from protos/) or ejabberd
// (over XMPP) with one named scenario and prints the results as JSON lines.
//
//	loadgen -peer chatconnect -target 127.0.0.1:50051 -test-code 246810 -scenario chat
//	loadgen -peer ejabberd -xmpp-addr 127.0.0.1:5322 -scenario idle -server-pid 1234
//
// Progress goes to stderr; results (one JSON object per line) to stdout or -out.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"chatconnect.dev/loadgen/internal/ccpeer"
	"chatconnect.dev/loadgen/internal/peer"
	"chatconnect.dev/loadgen/internal/scenario"
	"chatconnect.dev/loadgen/internal/xmpppeer"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

type options struct {
	peerKind, name, target, testCode string
	xmppAddr, xmppDomain, xmppAPI    string
	scenario, out, serverPIDs        string
	concurrency, payloadSize         int
	window                           uint
	// chat
	users, chatWindow, maxInFlight int
	rates, loads                   string
	duration, settle               time.Duration
	// group
	members, senders int
	online, rate     float64
	// storm
	perSecond, retries int
	hold               time.Duration
	// drain
	backlog int
	// idle
	connections, sampleEvery int
}

func parse() *options {
	o := &options{}
	flag.StringVar(&o.peerKind, "peer", "chatconnect", "server under test: chatconnect or ejabberd")
	flag.StringVar(&o.name, "name", "", "the peer's name in reports (default: -peer)")
	flag.StringVar(&o.target, "target", "127.0.0.1:50051", "ChatConnect gateway host:port")
	flag.StringVar(&o.testCode, "test-code", os.Getenv("CHATCONNECT_USERS__TEST_NUMBERS_CODE"), "ChatConnect users.test_numbers_code")
	flag.UintVar(&o.window, "delivery-window", 0, "ChatConnect delivery window per device (0: server default)")
	flag.StringVar(&o.xmppAddr, "xmpp-addr", "127.0.0.1:5322", "ejabberd c2s host:port")
	flag.StringVar(&o.xmppDomain, "xmpp-domain", "bench.local", "ejabberd virtual host")
	flag.StringVar(&o.xmppAPI, "xmpp-api", "http://127.0.0.1:5380/api", "ejabberd mod_http_api URL (bulk registration)")
	flag.StringVar(&o.scenario, "scenario", "chat", "chat, group, storm, drain or idle")
	flag.StringVar(&o.out, "out", "", "append results to this file (default stdout)")
	flag.StringVar(&o.serverPIDs, "server-pid", "", "comma-separated server pids whose memory is read")
	flag.IntVar(&o.concurrency, "concurrency", 64, "registrations and handshakes in flight")
	flag.IntVar(&o.payloadSize, "payload", 160, "plaintext bytes per message")
	flag.IntVar(&o.users, "users", 100, "chat: users online")
	flag.IntVar(&o.chatWindow, "window", 4, "chat: sends in flight per user in the closed-loop step")
	flag.IntVar(&o.maxInFlight, "max-in-flight", 20000, "chat: open-loop sends awaiting the server before CLIENT/BACKLOG")
	flag.StringVar(&o.rates, "rates", "0", "chat: steps in msg/s per user; 0 is the closed-loop maximum")
	flag.StringVar(&o.loads, "loads", "", "chat: steps as fractions of the closed-loop maximum, e.g. 0.3,0.7")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "chat, group, storm: how long to send or connect")
	flag.DurationVar(&o.settle, "settle", 15*time.Second, "longest wait for the last deliveries after a step")
	flag.IntVar(&o.members, "members", 1000, "group: members")
	flag.Float64Var(&o.online, "online", 0.5, "group: share of members online")
	flag.IntVar(&o.senders, "senders", 2, "group, drain: senders")
	flag.Float64Var(&o.rate, "rate", 2, "group: messages per second per sender")
	flag.IntVar(&o.perSecond, "per-second", 200, "storm: new connections per second")
	flag.IntVar(&o.retries, "retries", 5, "storm: retries of a refused handshake (after its hint)")
	flag.DurationVar(&o.hold, "hold", 10*time.Second, "storm, idle: how long connections are held")
	flag.IntVar(&o.backlog, "backlog", 10000, "drain: messages waiting for the offline device")
	flag.IntVar(&o.connections, "connections", 10000, "idle: connected devices")
	flag.IntVar(&o.sampleEvery, "sample-every", 1000, "idle: connections between memory samples")
	flag.Parse()
	if o.name == "" {
		o.name = o.peerKind
	}
	return o
}

func floats(list string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func pids(list string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(list, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		v, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("-server-pid: %q is not a pid", p)
		}
		out = append(out, v)
	}
	return out, nil
}

func newPeer(o *options) (peer.Peer, error) {
	switch o.peerKind {
	case "chatconnect":
		if o.testCode == "" {
			return nil, fmt.Errorf("-test-code is required: start the server with users.test_numbers_code set and pass the same code")
		}
		return ccpeer.New(ccpeer.Config{
			Target: o.target, Name: o.name, TestCode: o.testCode,
			ProvisionConcurrency: o.concurrency, DeliveryWindow: uint32(o.window),
		})
	case "ejabberd":
		return xmpppeer.New(xmpppeer.Config{
			Addr: o.xmppAddr, Domain: o.xmppDomain, APIURL: o.xmppAPI, ProvisionConcurrency: o.concurrency,
		}), nil
	}
	return nil, fmt.Errorf("-peer %q: want chatconnect or ejabberd", o.peerKind)
}

func run() error {
	o := parse()
	p, err := newPeer(o)
	if err != nil {
		return err
	}
	serverPIDs, err := pids(o.serverPIDs)
	if err != nil {
		return err
	}
	env := scenario.Env{Peer: p, ServerPIDs: serverPIDs, ConnectConcurrency: o.concurrency}
	if (o.scenario == "idle" || o.scenario == "storm") && len(serverPIDs) == 0 {
		return fmt.Errorf("-scenario %s reads server memory: pass -server-pid", o.scenario)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var results []scenario.Result
	switch o.scenario {
	case "chat":
		rates, err := floats(o.rates)
		if err != nil {
			return fmt.Errorf("-rates: %w", err)
		}
		loads, err := floats(o.loads)
		if err != nil {
			return fmt.Errorf("-loads: %w", err)
		}
		results, err = scenario.Chat(ctx, env, scenario.ChatParams{
			Users: o.users, Duration: o.duration, PayloadSize: o.payloadSize, Window: o.chatWindow,
			Rates: rates, Loads: loads, MaxInFlight: o.maxInFlight, Settle: o.settle,
		})
		if err != nil {
			return err
		}
	case "group":
		r, err := scenario.Group(ctx, env, scenario.GroupParams{
			Members: o.members, Online: o.online, Senders: o.senders, RatePerSend: o.rate,
			Duration: o.duration, PayloadSize: o.payloadSize, Settle: o.settle,
		})
		if err != nil {
			return err
		}
		results = append(results, r)
	case "storm":
		r, err := scenario.Storm(ctx, env, scenario.StormParams{
			PerSecond: o.perSecond, Duration: o.duration, Retries: o.retries, Hold: o.hold,
		})
		if err != nil {
			return err
		}
		results = append(results, r)
	case "drain":
		r, err := scenario.Drain(ctx, env, scenario.DrainParams{
			Backlog: o.backlog, Senders: o.senders, PayloadSize: o.payloadSize, Timeout: o.settle * 8,
		})
		if err != nil {
			return err
		}
		results = append(results, r)
	case "idle":
		r, err := scenario.Idle(ctx, env, scenario.IdleParams{
			Connections: o.connections, Hold: o.hold, SampleEvery: o.sampleEvery,
		})
		if err != nil {
			return err
		}
		results = append(results, r)
	default:
		return fmt.Errorf("-scenario %q: want chat, group, storm, drain or idle", o.scenario)
	}
	return write(o.out, results)
}

func write(path string, results []scenario.Result) error {
	out := os.Stdout
	if path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	enc := json.NewEncoder(out)
	for _, r := range results {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}
