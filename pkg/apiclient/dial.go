package apiclient

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// awsMetadataV6 is the IPv6 address of the AWS instance metadata service: a unique-local
// address, not a link-local one, serving what 169.254.169.254 serves.
var awsMetadataV6 = netip.MustParseAddr("fd00:ec2::254")

// addressError is the error of a connection refused by the link-local guard; it matches
// ErrAddressNotAllowed.
type addressError struct{ addr string }

func (e *addressError) Error() string {
	return fmt.Sprintf("%s is a link-local or cloud metadata address: not connecting", e.addr)
}

func (e *addressError) Is(target error) bool { return target == ErrAddressNotAllowed }

// checkAddress refuses an "ip:port" (or bare IP) that the client must never connect to:
// link-local unicast and multicast (169.254.0.0/16, fe80::/10, 224.0.0.0/24, ff02::/16) and
// the AWS IPv6 metadata address, IPv4-mapped forms included.
func checkAddress(address string) error {
	ip, err := netip.ParseAddr(address)
	if err != nil {
		ap, perr := netip.ParseAddrPort(address)
		if perr != nil {
			return &addressError{addr: address + " (not an IP address)"}
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	if ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip == awsMetadataV6 {
		return &addressError{addr: address}
	}
	return nil
}

// controlDial is the net.Dialer Control hook of the client's dialer: it runs after the name
// is resolved and before each connect(2), on the very address connected to, so neither an
// allowlisted name resolving to a metadata address nor a rebinding DNS answer gets through.
func controlDial(_, address string, _ syscall.RawConn) error { return checkAddress(address) }

// guardTransport makes tr refuse link-local addresses. Without a dialer of its own (the
// client's clone of http.DefaultTransport, or a caller's transport without DialContext) it
// gets a net.Dialer with DefaultTransport's timeouts and controlDial; a caller's DialContext
// and DialTLSContext are wrapped so that a connection to such an address is closed before
// anything is written to it.
func guardTransport(tr *http.Transport, resolver *net.Resolver, own bool) {
	if own || tr.DialContext == nil {
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Resolver: resolver, Control: controlDial}
		tr.DialContext = d.DialContext
	} else {
		tr.DialContext = checkedDial(tr.DialContext)
	}
	if tr.DialTLSContext != nil {
		tr.DialTLSContext = checkedDial(tr.DialTLSContext)
	}
}

type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// checkedDial wraps a dialer the client does not control: the address it connected to is
// checked before the connection is handed to the transport.
func checkedDial(dial dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if ra, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
			if err := checkAddress(ra.AddrPort().String()); err != nil {
				_ = conn.Close()
				return nil, &net.OpError{Op: "dial", Net: network, Addr: ra, Err: err}
			}
		}
		return conn, nil
	}
}
