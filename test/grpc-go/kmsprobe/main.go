// kmsprobe dials a KMS plugin socket the way kube-apiserver's KMS client does (grpc-go,
// insecure, WaitForReady, unix context dialer, 3 s per call) and calls v2, v2alpha1 and v1beta1.
// Messages are encoded by hand with protowire; no generated code is needed.
// It prints one JSON line and exits 1 on any failure.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
)

// rawCodec passes pre-encoded protobuf bytes through unchanged.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// msg is a message made only of length-delimited fields (all KMS fields are strings, bytes or maps).
type msg map[protowire.Number][][]byte

func enc(fields ...interface{}) []byte {
	var b []byte
	for i := 0; i+1 < len(fields); i += 2 {
		var v []byte
		switch x := fields[i+1].(type) {
		case string:
			v = []byte(x)
		case []byte:
			v = x
		}
		b = protowire.AppendBytes(protowire.AppendTag(b, protowire.Number(fields[i].(int)), protowire.BytesType), v)
	}
	return b
}

func dec(b []byte) (msg, error) {
	m := msg{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		if typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			m[num] = append(m[num], v)
			b = b[n:]
			continue
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
	}
	return m, nil
}

func (m msg) s(n protowire.Number) string { return string(m.b(n)) }
func (m msg) b(n protowire.Number) []byte {
	if v := m[n]; len(v) > 0 {
		return v[len(v)-1]
	}
	return nil
}

// percentEncode escapes what RFC 3986 does not allow in an authority, like grpc-go >= 1.57.
func percentEncode(s string) string {
	var out bytes.Buffer
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || bytes.IndexByte([]byte("-_.~!$&'()*+,;=:[]@"), c) >= 0 {
			out.WriteByte(c)
		} else {
			fmt.Fprintf(&out, "%%%02X", c)
		}
	}
	return out.String()
}

type probe struct {
	conn    *grpc.ClientConn
	timeout time.Duration
	mu      sync.Mutex
	calls   int
	errs    map[string]int
}

func (p *probe) call(method string, req []byte) msg {
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	var resp []byte
	err := p.conn.Invoke(ctx, method, req, &resp, grpc.ForceCodec(rawCodec{}))
	var m msg
	if err == nil {
		m, err = dec(resp)
	}
	p.record(err, method)
	return m
}

func (p *probe) record(err error, what string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if err != nil {
		p.errs[what+": "+err.Error()]++
	}
}

func (p *probe) check(ok bool, what string) {
	if !ok {
		p.record(fmt.Errorf("check failed"), what)
	}
}

func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// v2Pair runs Encrypt then Decrypt (ciphertext, key_id, annotations as returned) on one v2 service.
func (p *probe) v2Pair(svc, keyID string) {
	plain, uid := random(32), hex.EncodeToString(random(16))
	e := p.call(svc+"/Encrypt", enc(1, plain, 2, uid))
	if e == nil {
		return
	}
	p.check(len(e.b(1)) > 0 && (keyID == "" || e.s(2) == keyID), svc+"/Encrypt response")
	req := enc(1, e.b(1), 2, uid, 3, e.s(2))
	for _, entry := range e[3] { // map entries are re-sent as they came
		req = protowire.AppendBytes(protowire.AppendTag(req, 4, protowire.BytesType), entry)
	}
	if d := p.call(svc+"/Decrypt", req); d != nil {
		p.check(bytes.Equal(d.b(1), plain), svc+"/Decrypt plaintext")
	}
}

func main() {
	socket := flag.String("socket", "", "unix socket path (dialed as a passthrough target, like kube-apiserver)")
	mode := flag.String("mode", "raw", "authority: raw (no WithAuthority: grpc-go sends the path), percent, localhost, userinfo (user@localhost)")
	seq := flag.Int("n", 200, "sequential v2 Encrypt+Decrypt pairs")
	conc := flag.Int("c", 50, "concurrent v2 Encrypt+Decrypt pairs")
	idle := flag.Duration("idle", 0, "stay connected but silent this long before the first call")
	flag.Parse()
	opts := []grpc.DialOption{
		grpc.WithInsecure(),
		grpc.WithDefaultCallOptions(grpc.WaitForReady(true)),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", addr)
		}),
	}
	authority := *socket
	switch *mode {
	case "raw":
	case "percent":
		authority = percentEncode(*socket)
		opts = append(opts, grpc.WithAuthority(authority))
	case "localhost":
		authority = "localhost"
		opts = append(opts, grpc.WithAuthority(authority))
	case "userinfo":
		authority = "kube-apiserver@localhost"
		opts = append(opts, grpc.WithAuthority(authority))
	default:
		fmt.Fprintf(os.Stderr, "unknown -mode %q\n", *mode)
		os.Exit(2)
	}
	conn, err := grpc.Dial(*socket, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(1)
	}
	defer conn.Close()
	if *idle > 0 { // Dial connects at once; the server sees a client that sends only its preface
		time.Sleep(*idle)
	}
	p := &probe{conn: conn, timeout: 3 * time.Second, errs: map[string]int{}}
	start := time.Now()

	st := p.call("/v2.KeyManagementService/Status", nil)
	p.check(st != nil && st.s(2) == "ok" && st.s(3) != "", "v2 Status healthz/key_id")
	p.v2Pair("/v2.KeyManagementService", st.s(3))
	sa := p.call("/v2alpha1.KeyManagementService/Status", nil)
	p.check(sa != nil && sa.s(1) == "v2alpha1" && sa.s(2) == "ok", "v2alpha1 Status")
	p.v2Pair("/v2alpha1.KeyManagementService", "")
	ver := p.call("/v1beta1.KeyManagementService/Version", enc(1, "v1beta1"))
	p.check(ver != nil && ver.s(1) == "v1beta1", "v1beta1 Version")
	plain := random(32)
	if e := p.call("/v1beta1.KeyManagementService/Encrypt", enc(1, "v1beta1", 2, plain)); e != nil {
		d := p.call("/v1beta1.KeyManagementService/Decrypt", enc(1, "v1beta1", 2, e.b(1)))
		p.check(d != nil && bytes.Equal(d.b(1), plain), "v1beta1 Decrypt plaintext")
	}
	for i := 0; i < *seq; i++ {
		p.v2Pair("/v2.KeyManagementService", st.s(3))
	}
	var wg sync.WaitGroup
	for i := 0; i < *conc; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); p.v2Pair("/v2.KeyManagementService", st.s(3)) }()
	}
	wg.Wait()

	failed := 0
	for _, n := range p.errs {
		failed += n
	}
	out, _ := json.Marshal(map[string]interface{}{
		"grpcGo": grpc.Version, "mode": *mode, "authority": authority,
		"statusVersion": st.s(1), "keyId": st.s(3), "v1beta1Runtime": ver.s(2) + " " + ver.s(3),
		"sequentialPairs": *seq, "concurrentPairs": *conc, "calls": p.calls, "failed": failed,
		"errors": p.errs, "ms": time.Since(start).Milliseconds(), "ok": failed == 0,
	})
	fmt.Println(string(out))
	if failed > 0 {
		os.Exit(1)
	}
}
