package apiclient_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/routemaster-drain/drain/pkg/apiclient"
)

// fakeDNS is a DNS server on 127.0.0.1 that answers every A query with the address next
// returns (and AAAA queries with nothing), so a test can make a name resolve, then rebind,
// wherever it likes without touching the machine's resolver.
type fakeDNS struct {
	mu   sync.Mutex
	next func() netip.Addr
	addr string
}

func newFakeDNS(t *testing.T, next func() netip.Addr) *fakeDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	d := &fakeDNS{next: next, addr: pc.LocalAddr().String()}
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp, ok := d.answer(buf[:n]); ok {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	}()
	return d
}

func (d *fakeDNS) answer(query []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
	b.EnableCompression()
	_ = b.StartQuestions()
	_ = b.Question(q)
	_ = b.StartAnswers()
	if q.Type == dnsmessage.TypeA {
		d.mu.Lock()
		ip := d.next()
		d.mu.Unlock()
		_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 0}, dnsmessage.AResource{A: ip.As4()})
	}
	resp, err := b.Finish()
	return resp, err == nil
}

// resolver returns a resolver that asks only d.
func (d *fakeDNS) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var nd net.Dialer
		return nd.DialContext(ctx, "udp", d.addr)
	}}
}

// A link-local address is refused before any connection, whatever the allowlist says, with
// an error that is not retryable and does not count against the host's circuit.
func TestLinkLocalAddressesRefused(t *testing.T) {
	c := newClient(t, apiclient.Options{
		AllowHosts: []string{"169.254.169.254", "fe80::1", "::ffff:169.254.1.1", "fd00:ec2::254"},
		Breaker:    apiclient.BreakerOptions{Enabled: true, VolumeThreshold: 1},
	})
	for _, u := range []string{
		"http://169.254.169.254/latest/meta-data/iam/security-credentials/",
		"https://169.254.169.254/",
		"http://[fe80::1]:8080/",
		"http://[::ffff:169.254.1.1]/",
		"http://[fd00:ec2::254]/latest/meta-data/",
	} {
		start := time.Now()
		_, err := c.Get(context.Background(), u)
		if !errors.Is(err, apiclient.ErrAddressNotAllowed) || apiclient.Retryable(err) || errors.Is(err, apiclient.ErrConnection) {
			t.Errorf("%s: error %v, want ErrAddressNotAllowed, not retryable", u, err)
		}
		if !strings.Contains(err.Error(), "link-local") {
			t.Errorf("%s: error %q does not say why", u, err)
		}
		// No connection attempt: a connect to these would hang until the timeout.
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("%s: refused after %v", u, d)
		}
	}
	// Refusals are not failures: the circuit (volume 1) is still closed.
	if _, err := c.Get(context.Background(), "http://169.254.169.254/"); errors.Is(err, apiclient.ErrCircuitOpen) {
		t.Errorf("refusals opened the circuit: %v", err)
	}
}

// The check runs on the address dialled, after resolution and at every connection: an
// allowlisted name that resolves to 127.0.0.1 is fetched, and once its DNS answer rebinds to
// the metadata address, the next connection is refused and the origin sees nothing more.
func TestDNSRebindingToLinkLocalRefused(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close") // every request dials (and resolves) again
	})
	_, port, _ := net.SplitHostPort(o.Listener.Addr().String())
	var answers []netip.Addr
	dns := newFakeDNS(t, func() netip.Addr {
		ip := netip.MustParseAddr("127.0.0.1")
		if len(answers) >= 1 {
			ip = netip.MustParseAddr("169.254.169.254")
		}
		answers = append(answers, ip)
		return ip
	})
	c := newClient(t, apiclient.Options{AllowHosts: []string{"origin.test"}, Resolver: dns.resolver()})
	u := "http://origin.test:" + port + "/widgets/1"
	if _, err := c.Get(context.Background(), u); err != nil {
		t.Fatalf("origin.test resolving to 127.0.0.1: %v", err)
	}
	_, err := c.Get(context.Background(), u)
	if !errors.Is(err, apiclient.ErrAddressNotAllowed) {
		t.Fatalf("origin.test rebound to 169.254.169.254: error %v, want ErrAddressNotAllowed", err)
	}
	if !strings.Contains(err.Error(), "169.254.169.254:"+port) {
		t.Errorf("error %q does not name the address", err)
	}
	if n := o.count(); n != 1 {
		t.Errorf("origin saw %d requests, want 1", n)
	}
	dns.mu.Lock()
	defer dns.mu.Unlock()
	if len(answers) < 2 {
		t.Errorf("resolved %d times: the second fetch did not resolve again", len(answers))
	}
}

// remoteAddrConn reports a remote address other than the one it is connected to.
type remoteAddrConn struct {
	net.Conn
	remote net.Addr
}

func (c remoteAddrConn) RemoteAddr() net.Addr { return c.remote }

// A caller's own DialContext is checked on the address it connected to: the connection is
// closed before the request is written.
func TestCallersDialerChecked(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {})
	metadata := &net.TCPAddr{IP: net.ParseIP("169.254.169.254"), Port: 80}
	for name, remote := range map[string]net.Addr{"loopback": nil, "link-local": metadata} {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, network, o.Listener.Addr().String())
			if err != nil || remote == nil {
				return conn, err
			}
			return remoteAddrConn{conn, remote}, nil
		}
		c := newClient(t, apiclient.Options{Transport: tr})
		before := o.count()
		_, err := c.Get(context.Background(), "http://api.test/x")
		switch name {
		case "loopback":
			if err != nil || o.count() != before+1 {
				t.Errorf("%s: %v", name, err)
			}
		default:
			if !errors.Is(err, apiclient.ErrAddressNotAllowed) || o.count() != before {
				t.Errorf("%s: error %v, %d requests reached the origin", name, err, o.count()-before)
			}
		}
	}
}
