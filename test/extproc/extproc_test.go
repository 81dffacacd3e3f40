package extproc

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// seen is what the fake picker received on one stream.
type seen struct {
	headers map[string]string
	// headersEOS is the end of stream on the headers.
	headersEOS bool
	body       []byte
	chunks     int
	// bodyEOS is the end of stream on the last body chunk.
	bodyEOS bool
	config  *extprocv3.ProtocolConfiguration
}

// fakePicker answers as the EPP (v1.5.0) does, after the whole body, by
// the request's x-test-answer header:
//
//	"" or "header": a header mutation and the metadata, both with two endpoints;
//	"metadata": the metadata only;
//	"refuse": an ImmediateResponse 503;
//	"error": a gRPC error.
type fakePicker struct {
	extprocv3.UnimplementedExternalProcessorServer
	mu   sync.Mutex
	seen []seen
}

func (f *fakePicker) Process(srv extprocv3.ExternalProcessor_ProcessServer) error {
	var s seen
	defer func() {
		f.mu.Lock()
		f.seen = append(f.seen, s)
		f.mu.Unlock()
	}()
	for {
		req, err := srv.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if req.GetProtocolConfig() != nil {
			s.config = req.GetProtocolConfig()
		}
		var ready bool
		switch {
		case req.GetRequestHeaders() != nil:
			s.headers = map[string]string{}
			for _, h := range req.GetRequestHeaders().GetHeaders().GetHeaders() {
				s.headers[h.GetKey()] = string(h.GetRawValue())
			}
			s.headersEOS = req.GetRequestHeaders().GetEndOfStream()
			ready = s.headersEOS
		case req.GetRequestBody() != nil:
			s.body = append(s.body, req.GetRequestBody().GetBody()...)
			s.chunks++
			s.bodyEOS = req.GetRequestBody().GetEndOfStream()
			ready = s.bodyEOS
		}
		if !ready {
			continue
		}
		switch s.headers["x-test-answer"] {
		case "refuse":
			return srv.Send(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
				ImmediateResponse: &extprocv3.ImmediateResponse{
					Status: &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable},
					Body:   []byte("inference error: ServiceUnavailable - failed to find endpoint candidates for serving the request"),
				},
			}})
		case "error":
			return status.Error(codes.Unknown, "failed to handle request: boom")
		}
		endpoints := "10.0.0.7:8000,10.0.0.8:8000"
		headers := &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{ClearRouteCache: true}}
		if s.headers["x-test-answer"] != "metadata" {
			headers.Response.HeaderMutation = &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
				{Header: &corev3.HeaderValue{Key: DestinationHeader, RawValue: []byte(endpoints)}},
				{Header: &corev3.HeaderValue{Key: "Content-Length", RawValue: fmt.Appendf(nil, "%d", len(s.body))}},
			}}
		}
		meta, _ := structpb.NewStruct(map[string]any{MetadataNamespace: map[string]any{DestinationHeader: endpoints}})
		if err := srv.Send(&extprocv3.ProcessingResponse{
			Response:        &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: headers},
			DynamicMetadata: meta,
		}); err != nil {
			return err
		}
		// The body to forward, in chunks of 62,000 bytes as the picker does.
		for start := 0; start < len(s.body); start += 62000 {
			end := min(start+62000, len(s.body))
			if err := srv.Send(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{
				RequestBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{
					Mutation: &extprocv3.BodyMutation_StreamedResponse{StreamedResponse: &extprocv3.StreamedBodyResponse{Body: s.body[start:end], EndOfStream: end == len(s.body)}},
				}}},
			}}); err != nil {
				return err
			}
		}
	}
}

// seenAll is a copy of what the fake has received.
func (f *fakePicker) seenAll() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.seen...)
}

// serve starts the fake picker on a local port, with TLS when cert is set.
func serve(t *testing.T, cert *tls.Certificate) (*fakePicker, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if cert != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{*cert}, NextProtos: []string{"h2"}})))
	}
	srv := grpc.NewServer(opts...)
	f := &fakePicker{}
	extprocv3.RegisterExternalProcessorServer(srv, f)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return f, ln.Addr().String()
}

// pick is one Pick with a deadline.
func pick(t *testing.T, c *Client, answer string, body []byte) (Decision, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Pick(ctx, "/v1/completions", map[string]string{"x-test-answer": answer, "X-Gateway-Inference-Objective": "chat"}, body)
}

const body = `{"model":"m","prompt":"hello"}`

func TestPickReadsTheDestinationHeader(t *testing.T) {
	f, addr := serve(t, nil)
	c := &Client{Addr: addr}
	defer c.Close()
	d, err := pick(t, c, "header", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if d != (Decision{Endpoint: "10.0.0.7:8000"}) {
		t.Errorf("got %+v, want the first endpoint of the header", d)
	}
	s := f.seenAll()
	if len(s) != 1 {
		t.Fatalf("the picker saw %d stream(s), want 1", len(s))
	}
	for k, want := range map[string]string{
		":method": "POST", ":path": "/v1/completions", ":authority": "localhost", "content-type": "application/json",
		"content-length": fmt.Sprint(len(body)), "x-test-answer": "header", "x-gateway-inference-objective": "chat",
	} {
		if got := s[0].headers[k]; got != want {
			t.Errorf("header %s: got %q, want %q", k, got, want)
		}
	}
	if len(s[0].headers["x-request-id"]) != 32 {
		t.Errorf("x-request-id: got %q, want a random one", s[0].headers["x-request-id"])
	}
	if s[0].headersEOS || !s[0].bodyEOS || string(s[0].body) != body {
		t.Errorf("headers then the body ending the stream: got headers EoS %v, body EoS %v, body %q", s[0].headersEOS, s[0].bodyEOS, s[0].body)
	}
	if cfg := s[0].config; cfg.GetRequestBodyMode() != filterv3.ProcessingMode_FULL_DUPLEX_STREAMED {
		t.Errorf("protocol config: got %v, want FULL_DUPLEX_STREAMED", cfg)
	}
}

func TestPickReadsTheDestinationMetadata(t *testing.T) {
	_, addr := serve(t, nil)
	c := &Client{Addr: addr}
	defer c.Close()
	d, err := pick(t, c, "metadata", []byte(body))
	if err != nil || d != (Decision{Endpoint: "10.0.0.7:8000"}) {
		t.Errorf("got %+v, %v; want the first endpoint of the metadata", d, err)
	}
}

func TestPickReadsARefusal(t *testing.T) {
	_, addr := serve(t, nil)
	c := &Client{Addr: addr}
	defer c.Close()
	d, err := pick(t, c, "refuse", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if d.Endpoint != "" || d.Status != 503 || !strings.Contains(d.Detail, "failed to find endpoint candidates") {
		t.Errorf("got %+v, want a 503 with the picker's message", d)
	}
	// The connection serves the next request.
	if d, err := pick(t, c, "header", []byte(body)); err != nil || d.Endpoint != "10.0.0.7:8000" {
		t.Errorf("after a refusal: got %+v, %v", d, err)
	}
}

func TestPickReturnsAGRPCError(t *testing.T) {
	_, addr := serve(t, nil)
	c := &Client{Addr: addr}
	defer c.Close()
	if d, err := pick(t, c, "error", []byte(body)); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("got %+v, %v; want the picker's error", d, err)
	}
}

func TestPickStreamsALargeBodyInChunks(t *testing.T) {
	f, addr := serve(t, nil)
	c := &Client{Addr: addr}
	defer c.Close()
	large := []byte(`{"model":"m","prompt":"` + strings.Repeat("x", 5<<20) + `"}`)
	if d, err := pick(t, c, "header", large); err != nil || d.Endpoint != "10.0.0.7:8000" {
		t.Fatalf("got %+v, %v", d, err)
	}
	s := f.seenAll()[0]
	if !bytes.Equal(s.body, large) || s.chunks != (len(large)+ChunkBytes-1)/ChunkBytes {
		t.Errorf("got %d bytes in %d chunks, want %d bytes in chunks of %d", len(s.body), s.chunks, len(large), ChunkBytes)
	}
}

func TestPickWithoutABodyEndsTheStreamWithTheHeaders(t *testing.T) {
	f, addr := serve(t, nil)
	c := &Client{Addr: addr}
	defer c.Close()
	if d, err := pick(t, c, "header", nil); err != nil || d.Endpoint != "10.0.0.7:8000" {
		t.Fatalf("got %+v, %v", d, err)
	}
	if s := f.seenAll()[0]; !s.headersEOS || s.chunks != 0 {
		t.Errorf("got headers EoS %v and %d body chunk(s), want the end of stream on the headers", s.headersEOS, s.chunks)
	}
}

// One connection, through the custom dialer, serves concurrent picks over
// TLS.
func TestConcurrentPicksShareOneTLSConnection(t *testing.T) {
	cert := selfSigned(t)
	f, addr := serve(t, &cert)
	var dials atomic.Int32
	c := &Client{Addr: addr, TLS: true, Dial: func(ctx context.Context, a string) (net.Conn, error) {
		dials.Add(1)
		if a != addr {
			return nil, fmt.Errorf("dialing %q, want %q", a, addr)
		}
		return (&net.Dialer{}).DialContext(ctx, "tcp", a)
	}}
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			answer := "header"
			if i%2 == 1 {
				answer = "refuse"
			}
			d, err := pick(t, c, answer, []byte(body))
			if err == nil && (answer == "header") != (d.Endpoint == "10.0.0.7:8000") {
				err = fmt.Errorf("answer %s: got %+v", answer, d)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d dials, want 1", n)
	}
	if n := len(f.seenAll()); n != 20 {
		t.Errorf("the picker saw %d streams, want 20", n)
	}
	// A plaintext client does not get through to a TLS picker.
	plain := &Client{Addr: addr}
	defer plain.Close()
	if _, err := pick(t, plain, "header", []byte(body)); err == nil {
		t.Error("plaintext to a TLS picker: want an error")
	}
}

func TestPickAfterCloseFails(t *testing.T) {
	_, addr := serve(t, nil)
	c := &Client{Addr: addr}
	if _, err := pick(t, c, "header", []byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := pick(t, c, "header", []byte(body)); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("after Close: got %v, want an error", err)
	}
}

func TestDestinationRefusesDisagreeingAnswers(t *testing.T) {
	meta, _ := structpb.NewStruct(map[string]any{MetadataNamespace: map[string]any{DestinationHeader: "10.0.0.9:8000"}})
	resp := &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{
			HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
				{Header: &corev3.HeaderValue{Key: DestinationHeader, Value: "10.0.0.7:8000"}},
			}},
		}}},
		DynamicMetadata: meta,
	}
	if got, err := destination(resp); err == nil {
		t.Errorf("a header and metadata that disagree: got %q, want an error", got)
	}
	resp.DynamicMetadata = nil
	if got, err := destination(resp); err != nil || got != "10.0.0.7:8000" {
		t.Errorf("a header in value, not raw_value: got %q, %v", got, err)
	}
	resp.Response = &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}
	if _, err := destination(resp); err == nil {
		t.Error("neither header nor metadata: want an error")
	}
}

// selfSigned is a certificate for 127.0.0.1, as the picker generates one.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{Organization: []string{"Inference Ext"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
