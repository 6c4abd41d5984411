// The ceiling of a CSR-signing server on this machine: the least any HTTP server must do per
// sign request, and nothing more. One thread, one epoll loop, keep-alive HTTP/1.1 on loopback;
// for every request it reads (headers and Content-Length body) it runs exactly the two ECDSA
// P-256 operations of ../shared/bench/crypto_bound.sh — one verify (the CSR's signature) and
// one sign (the certificate's) with keys and digests made at start-up — and answers a fixed
// 200 response of the given size. No parsing of JSON, CSRs or tokens, no certificate, no
// allocation per request.
//
// Its requests/s divided by the crypto bound, pinned and loaded exactly like Coffer
// (bench/pki/run.sh --pin), is the highest efficiency any server can reach here: what it loses
// below 1.0 is the kernel's cost of receiving a request and sending an answer over loopback.
//
//   sign_ceiling PORT [RESPONSE_BODY_BYTES=2000]     (PORT 0: a free port, printed on stdout)
//
// A benchmark tool, not part of Coffer: it binds 127.0.0.1 only and trusts its client.

// ECDSA_sign/ECDSA_verify on an EC_KEY: what `openssl speed ecdsap256` times.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/obj_mac.h>
#include <openssl/sha.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace {

struct Crypto {
  EC_KEY* csr_key = nullptr;
  EC_KEY* ca_key = nullptr;
  std::array<unsigned char, SHA256_DIGEST_LENGTH> csr_digest{};
  std::array<unsigned char, SHA256_DIGEST_LENGTH> tbs_digest{};
  std::vector<unsigned char> csr_sig;

  bool Init() {
    csr_key = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
    ca_key = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
    if (!csr_key || !ca_key || EC_KEY_generate_key(csr_key) != 1 ||
        EC_KEY_generate_key(ca_key) != 1) {
      return false;
    }
    static constexpr std::string_view kInfo = "certification request info";
    static constexpr std::string_view kTbs = "to be signed certificate";
    SHA256(reinterpret_cast<const unsigned char*>(kInfo.data()), kInfo.size(), csr_digest.data());
    SHA256(reinterpret_cast<const unsigned char*>(kTbs.data()), kTbs.size(), tbs_digest.data());
    csr_sig.resize(static_cast<size_t>(ECDSA_size(csr_key)));
    unsigned int len = 0;
    if (ECDSA_sign(0, csr_digest.data(), static_cast<int>(csr_digest.size()), csr_sig.data(), &len,
                   csr_key) != 1) {
      return false;
    }
    csr_sig.resize(len);
    return true;
  }

  // The two operations of one sign request; false if either fails.
  bool SignRequest() {
    if (ECDSA_verify(0, csr_digest.data(), static_cast<int>(csr_digest.size()), csr_sig.data(),
                     static_cast<int>(csr_sig.size()), csr_key) != 1) {
      return false;
    }
    std::array<unsigned char, 80> sig{};
    unsigned int len = 0;
    return ECDSA_sign(0, tbs_digest.data(), static_cast<int>(tbs_digest.size()), sig.data(), &len,
                      ca_key) == 1;
  }
};

// Content-Length of a header block (case-insensitive name), 0 when absent.
size_t ContentLength(std::string_view head) {
  static constexpr std::string_view kName = "\r\ncontent-length:";
  for (size_t i = 0; i + kName.size() <= head.size(); ++i) {
    if (strncasecmp(head.data() + i, kName.data(), kName.size()) == 0) {
      return std::strtoul(std::string(head.substr(i + kName.size(), 20)).c_str(), nullptr, 10);
    }
  }
  return 0;
}

struct Conn {
  std::string in;
  std::string out;
  size_t out_sent = 0;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PORT [RESPONSE_BODY_BYTES=2000]\n", argv[0]);
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const size_t body_bytes = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 2000;
  Crypto crypto;
  if (!crypto.Init()) {
    std::fprintf(stderr, "sign_ceiling: key set-up failed\n");
    return 1;
  }
  const std::string response =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(body_bytes) + "\r\n\r\n" + std::string(body_bytes, 'x');

  const int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof(addr);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(lfd, 512) != 0 ||
      getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) {
    std::perror("sign_ceiling: listen");
    return 1;
  }
  std::printf("%d\n", ntohs(addr.sin_port));
  std::fflush(stdout);

  const int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  std::unordered_map<int, Conn> conns;
  std::array<epoll_event, 64> events{};
  std::array<char, 16384> buf{};

  auto close_conn = [&](int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    conns.erase(fd);
  };
  // Sends what is queued; false when the connection is gone.
  auto flush = [&](int fd, Conn& c) {
    while (c.out_sent < c.out.size()) {
      const ssize_t n =
          send(fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_NOSIGNAL);
      if (n > 0) {
        c.out_sent += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        epoll_event w{};
        w.events = EPOLLIN | EPOLLOUT;
        w.data.fd = fd;
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &w);
        return true;
      }
      return false;
    }
    c.out.clear();
    c.out_sent = 0;
    return true;
  };

  for (;;) {
    const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0 && errno == EINTR) continue;
    for (int i = 0; i < n; ++i) {
      const int fd = events[static_cast<size_t>(i)].data.fd;
      if (fd == lfd) {
        for (;;) {
          const int c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
          conns[c];
        }
        continue;
      }
      auto it = conns.find(fd);
      if (it == conns.end()) continue;
      Conn& c = it->second;
      if ((events[static_cast<size_t>(i)].events & EPOLLOUT) != 0) {
        if (!flush(fd, c)) {
          close_conn(fd);
          continue;
        }
        if (c.out.empty()) {
          epoll_event r{};
          r.events = EPOLLIN;
          r.data.fd = fd;
          epoll_ctl(ep, EPOLL_CTL_MOD, fd, &r);
        }
      }
      const ssize_t got = recv(fd, buf.data(), buf.size(), 0);
      if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        close_conn(fd);
        continue;
      }
      if (got > 0) c.in.append(buf.data(), static_cast<size_t>(got));
      // Every complete request in the buffer.
      for (;;) {
        const size_t end = c.in.find("\r\n\r\n");
        if (end == std::string::npos) break;
        const size_t total = end + 4 + ContentLength(std::string_view(c.in).substr(0, end));
        if (c.in.size() < total) break;
        c.in.erase(0, total);
        if (!crypto.SignRequest()) {
          std::fprintf(stderr, "sign_ceiling: ECDSA failed\n");
          return 1;
        }
        c.out += response;
      }
      if (!c.out.empty() && !flush(fd, c)) close_conn(fd);
    }
  }
}
