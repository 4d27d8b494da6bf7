// Command grpcfloor measures what a gRPC server costs per idle connection before any
// application code runs: it opens connections to bench/grpc_floor.py's bare server, one
// HTTP/2 connection each, holds one call open on each (or none), and reads the server's
// resident memory as they arrive. ChatConnect's own cost per idle device is the `idle`
// scenario's figure minus this floor.
//
//	go run ./cmd/grpcfloor -target 127.0.0.1:7799 -server-pid 1234 -call stream
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The bare server's methods: a bidirectional stream, a server stream, and a unary call.
var methods = map[string]string{
	"stream": "/grpcfloor.Floor/Stream",
	"listen": "/grpcfloor.Floor/Listen",
	"unary":  "/grpcfloor.Floor/Unary",
}

func residentKiB(pid int) (int64, error) {
	file, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading server memory (is -server-pid %d right?): %w", pid, err)
	}
	defer file.Close()
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		if rest, ok := strings.CutPrefix(scanner.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// open makes one connection and, unless call is unary, leaves one call open on it after
// a first exchange, as an idle device leaves its stream open after its handshake.
func open(ctx context.Context, target, call string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	if call == "unary" {
		return conn, conn.Invoke(ctx, methods[call], &emptypb.Empty{}, &emptypb.Empty{})
	}
	desc := &grpc.StreamDesc{ServerStreams: true, ClientStreams: call == "stream"}
	stream, err := conn.NewStream(ctx, desc, methods[call])
	if err != nil {
		return conn, err
	}
	if err := stream.SendMsg(&emptypb.Empty{}); err != nil {
		return conn, err
	}
	if call == "listen" {
		if err := stream.CloseSend(); err != nil {
			return conn, err
		}
	}
	return conn, stream.RecvMsg(&emptypb.Empty{})
}

func run() error {
	target := flag.String("target", "127.0.0.1:7799", "the bare server's host:port")
	pid := flag.Int("server-pid", 0, "the bare server's pid, whose memory is read")
	call := flag.String("call", "stream", "what each connection holds open: stream, listen or unary (none)")
	connections := flag.Int("connections", 10000, "connections to open")
	sampleEvery := flag.Int("sample-every", 1000, "connections between progress lines")
	hold := flag.Duration("hold", 10*time.Second, "how long to hold them before the last reading")
	flag.Parse()
	if _, ok := methods[*call]; !ok {
		return fmt.Errorf("-call %q: want stream, listen or unary", *call)
	}
	ctx := context.Background()
	before, err := residentKiB(*pid)
	if err != nil {
		return err
	}
	conns := make([]*grpc.ClientConn, 0, *connections)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < *connections; i++ {
		conn, err := open(ctx, *target, *call)
		if conn != nil {
			conns = append(conns, conn)
		}
		if err != nil {
			return fmt.Errorf("connection %d: %w", i+1, err)
		}
		if (i+1)%*sampleEvery == 0 {
			rss, _ := residentKiB(*pid)
			fmt.Fprintf(os.Stderr, "grpcfloor: %d connected, server RSS %.0f MiB\n", i+1, float64(rss)/1024)
		}
	}
	fmt.Fprintf(os.Stderr, "grpcfloor: holding %d connections for %s\n", len(conns), *hold)
	time.Sleep(*hold)
	after, err := residentKiB(*pid)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"call":               *call,
		"connections":        len(conns),
		"rss_before_mib":     float64(before) / 1024,
		"rss_after_mib":      float64(after) / 1024,
		"kib_per_connection": float64(after-before) / float64(len(conns)),
	})
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "grpcfloor:", err)
		os.Exit(1)
	}
}
