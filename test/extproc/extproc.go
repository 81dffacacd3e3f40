// Package extproc is a minimal gateway for tests: it asks an endpoint
// picker (the EPP of the Gateway API Inference Extension) where to send a
// request, speaking Envoy's external processing protocol (ext_proc v3) to
// it as Envoy does with the picker's filter in FULL_DUPLEX_STREAMED body
// mode, and as the picker's own hermetic tests do.
//
// One Pick is one ext_proc stream: the request's headers, then its whole
// body ending the stream, then the picker's answer. The picker answers
// only once it has the whole body (it parses the OpenAI request in it), in
// one of two ways:
//
//   - a RequestHeaders response whose header mutation sets
//     x-gateway-destination-endpoint to "ip:port" (a comma-separated list,
//     primary first, when the picker is configured to return fallbacks),
//     with the same value in the dynamic metadata envoy.lb /
//     x-gateway-destination-endpoint, followed by RequestBody responses
//     carrying the body to forward in StreamedResponse chunks;
//   - an ImmediateResponse with the HTTP status to answer the client (503
//     when it has no endpoint, 429 when everything is filtered out or it
//     sheds the request, 400 for a body it cannot parse) and a body
//     "inference error: <code> - <message>"; the stream then ends.
//
// An error it cannot map to a status ends the stream with a gRPC error,
// which Pick returns as an error.
package extproc

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

const (
	// DestinationHeader is the header, and the key in the envoy.lb dynamic
	// metadata, that carries the picker's choice.
	DestinationHeader = "x-gateway-destination-endpoint"
	// MetadataNamespace is the dynamic metadata namespace of the choice.
	MetadataNamespace = "envoy.lb"
	// ChunkBytes bounds one body message, as Envoy streams a body in
	// chunks (the picker answers in chunks of 62,000 bytes).
	ChunkBytes = 64 << 10
)

// Client is one ext-proc connection target: a picker.
type Client struct {
	// Addr is host:port of the picker's ext-proc port (9002 by default).
	Addr string
	// TLS is set when the picker serves TLS, as it does by default
	// (--secure-serving) with a self-signed certificate: the certificate is
	// not verified, and ALPN is h2.
	TLS bool
	// Dial, when set, opens the connection to addr (Addr, verbatim), for
	// example from inside a network namespace.
	Dial func(ctx context.Context, addr string) (net.Conn, error)

	mu     sync.Mutex
	conn   *grpc.ClientConn
	closed bool
}

// Decision is the picker's answer to one request.
type Decision struct {
	// Endpoint is "ip:port" the picker chose: the first of
	// x-gateway-destination-endpoint; "" when it refused.
	Endpoint string
	// Status is the HTTP status of the picker's ImmediateResponse when it
	// refused (503, 429, 400...), 0 otherwise.
	Status int
	// Detail is the body of a refusal, or its details when the body is
	// empty.
	Detail string
}

// client is the picker's client on the connection, created on first use.
func (c *Client) client() (extprocv3.ExternalProcessorClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("extproc: the client is closed")
	}
	if c.conn == nil {
		creds := insecure.NewCredentials()
		if c.TLS {
			creds = credentials.NewTLS(&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12})
		}
		opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
		if c.Dial != nil {
			opts = append(opts, grpc.WithContextDialer(c.Dial))
		}
		// passthrough: the address goes to the dialer as it is, resolved
		// (if it is a name) where the dialer runs.
		conn, err := grpc.NewClient("passthrough:///"+c.Addr, opts...)
		if err != nil {
			return nil, fmt.Errorf("extproc: connecting to %s: %w", c.Addr, err)
		}
		c.conn = conn
	}
	return extprocv3.NewExternalProcessorClient(c.conn), nil
}

// Close closes the connection; Pick fails afterwards.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn = nil
	return err
}

// Pick sends one request's headers (":method" POST, ":path" path,
// ":authority" localhost, "content-type: application/json",
// "content-length" and a random "x-request-id", each overridden by the
// one in extra, plus the rest of extra) and then its whole body, ending
// the stream, and returns the picker's decision. A request without a body
// ends the stream with its headers: the picker then picks a random
// endpoint. Pick returns once the picker has ended the stream.
func (c *Client) Pick(ctx context.Context, path string, extra map[string]string, body []byte) (Decision, error) {
	client, err := c.client()
	if err != nil {
		return Decision{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.Process(ctx)
	if err != nil {
		return Decision{}, fmt.Errorf("extproc: opening a stream to %s: %w", c.Addr, err)
	}
	for _, req := range requests(path, extra, body) {
		if err := stream.Send(req); err != nil {
			if errors.Is(err, io.EOF) {
				// The server ended the stream: Recv says how.
				break
			}
			return Decision{}, fmt.Errorf("extproc: sending to %s: %w", c.Addr, err)
		}
	}
	// Envoy would keep the stream open for the response phase; the
	// picker, on the end of the stream, runs its completion hooks.
	if err := stream.CloseSend(); err != nil {
		return Decision{}, fmt.Errorf("extproc: closing the request to %s: %w", c.Addr, err)
	}
	var d Decision
	var decided bool
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return d, fmt.Errorf("extproc: %s: %w", c.Addr, err)
		}
		if ir := resp.GetImmediateResponse(); ir != nil {
			d = Decision{Status: int(ir.GetStatus().GetCode()), Detail: string(ir.GetBody())}
			if d.Detail == "" {
				d.Detail = ir.GetDetails()
			}
			decided = true
			continue
		}
		if h := resp.GetRequestHeaders(); h != nil && !decided {
			endpoint, err := destination(resp)
			if err != nil {
				return d, fmt.Errorf("extproc: %s: %w", c.Addr, err)
			}
			d, decided = Decision{Endpoint: endpoint}, true
		}
	}
	if !decided {
		return d, fmt.Errorf("extproc: %s ended the stream without a decision", c.Addr)
	}
	return d, nil
}

// requests are the messages of one request: headers, then the body in
// chunks, the last ending the stream.
func requests(path string, extra map[string]string, body []byte) []*extprocv3.ProcessingRequest {
	headers := map[string]string{
		":method": "POST", ":path": path, ":authority": "localhost", ":scheme": "http",
		"content-type": "application/json", "content-length": strconv.Itoa(len(body)),
		"x-request-id": requestID(),
	}
	for k, v := range extra {
		headers[strings.ToLower(k)] = v
	}
	keys := make([]string, 0, len(headers))
	for k := range headers {
		keys = append(keys, k)
	}
	// Pseudo-headers first, as in HTTP/2.
	slices.SortFunc(keys, func(a, b string) int {
		if pa, pb := strings.HasPrefix(a, ":"), strings.HasPrefix(b, ":"); pa != pb {
			if pa {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	hm := &corev3.HeaderMap{}
	for _, k := range keys {
		// Envoy sends raw_value; the picker reads either.
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(headers[k])})
	}
	out := []*extprocv3.ProcessingRequest{{
		Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{
			Headers: hm, EndOfStream: len(body) == 0,
		}},
		// What Envoy announces on the first message of a stream; the picker
		// (v1.5.0) does not read it.
		ProtocolConfig: &extprocv3.ProtocolConfiguration{
			RequestBodyMode:  filterv3.ProcessingMode_FULL_DUPLEX_STREAMED,
			ResponseBodyMode: filterv3.ProcessingMode_FULL_DUPLEX_STREAMED,
		},
	}}
	for start := 0; start < len(body); start += ChunkBytes {
		end := min(start+ChunkBytes, len(body))
		out = append(out, &extprocv3.ProcessingRequest{
			Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{
				Body: body[start:end], EndOfStream: end == len(body),
			}},
		})
	}
	return out
}

// destination is the endpoint a RequestHeaders response routes to: the
// first of x-gateway-destination-endpoint in its header mutation or in
// its dynamic metadata. When both are there they must agree.
func destination(resp *extprocv3.ProcessingResponse) (string, error) {
	var header string
	var inHeader bool
	for _, o := range resp.GetRequestHeaders().GetResponse().GetHeaderMutation().GetSetHeaders() {
		if h := o.GetHeader(); strings.EqualFold(h.GetKey(), DestinationHeader) {
			header, inHeader = string(h.GetRawValue()), true
			if header == "" {
				header = h.GetValue()
			}
		}
	}
	var meta string
	var inMeta bool
	if ns, ok := resp.GetDynamicMetadata().GetFields()[MetadataNamespace]; ok {
		if v, ok := ns.GetStructValue().GetFields()[DestinationHeader]; ok {
			meta, inMeta = v.GetStringValue(), true
		}
	}
	switch {
	case inHeader && inMeta && header != meta:
		return "", fmt.Errorf("the header %s is %q but the metadata %s/%s is %q", DestinationHeader, header, MetadataNamespace, DestinationHeader, meta)
	case !inHeader && !inMeta:
		return "", fmt.Errorf("the headers response has neither the header %s nor the metadata %s/%s", DestinationHeader, MetadataNamespace, DestinationHeader)
	case !inHeader:
		header = meta
	}
	first, _, _ := strings.Cut(header, ",")
	first = strings.TrimSpace(first)
	if first == "" {
		return "", fmt.Errorf("%s is empty", DestinationHeader)
	}
	return first, nil
}

// requestID is a random x-request-id, as Envoy generates one.
func requestID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
