"""HTTPS for the REST API: the listening socket wrapped in TLS.

Why a module of its own: apps/vpc.py builds the server, but what TLS we accept
(1.2 and later, the default ciphers of Python's ssl) is a security decision
worth one place to read.  eventlet's green SSL context is used so that the
handshake happens in each connection's own greenthread, not in the accept
loop: a client that connects and never speaks TLS stalls only itself.
"""
import ssl

from eventlet.green import ssl as green_ssl


def server_context(cert, key):
    """A server-side TLS context with the certificate chain and key (PEM).
    Raises ssl.SSLError / OSError with the reason when they do not load or match."""
    ctx = green_ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


def wrap_listener(sock, cert, key):
    """The listening socket, accepting TLS connections only."""
    return server_context(cert, key).wrap_socket(sock, server_side=True)
