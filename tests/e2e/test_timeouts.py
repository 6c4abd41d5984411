"""Header and idle timeouts (Vault's http_read_header_timeout and http_idle_timeout): a client
that trickles its headers, or leaves a keep-alive connection idle, is disconnected; the server
keeps serving everyone else."""
import socket
import time
import unittest

from harness import ServerTest


class Timeouts(ServerTest):
    def setUp(self):
        super().setUp()
        self.s = self.server(tls=False, listener_extra='  http_read_header_timeout = "1s"\n'
                                                       '  http_idle_timeout = "2s"\n').start()

    def closed_within(self, sock, seconds):
        sock.settimeout(seconds)
        start = time.time()
        try:
            data = sock.recv(4096)
            while data and b"\r\n\r\n" not in data:
                data += sock.recv(4096)
        except socket.timeout:
            return None
        return time.time() - start

    def test_slow_headers_are_cut_off(self):
        sock = socket.create_connection(("127.0.0.1", self.s.port))
        sock.sendall(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n")  # never finishes the header
        took = self.closed_within(sock, 10)
        self.assertIsNotNone(took, "server kept a half-sent request open")
        self.assertLess(took, 5)
        sock.close()
        self.assertEqual(self.s.request("GET", "sys/seal-status")[0], 200)

    def test_idle_keepalive_connection_is_closed_and_busy_one_is_not(self):
        sock = socket.create_connection(("127.0.0.1", self.s.port))
        req = b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: x\r\n\r\n"
        for _ in range(3):  # keep-alive: several requests on one connection, each well in time
            sock.sendall(req)
            resp = sock.recv(65536)
            self.assertTrue(resp.startswith(b"HTTP/1.1 200"), resp)
            time.sleep(0.5)
        sock.settimeout(10)
        start = time.time()
        self.assertEqual(sock.recv(1), b"", "idle connection should be closed by the server")
        self.assertLess(time.time() - start, 6)
        sock.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
