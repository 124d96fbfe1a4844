/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conn_rate: the two ends of the packet-path benchmark.
 *
 *   conn_rate server PORT SECONDS
 *       accepts TCP connections on every address and closes them at once,
 *       for at most SECONDS, then exits.
 *   conn_rate client ADDRESS PORT SECONDS CONCURRENCY
 *       opens TCP connections to ADDRESS:PORT as fast as it can, keeping
 *       CONCURRENCY non-blocking connects in flight, for SECONDS; prints
 *       "<completed handshakes> <failed> <seconds>" on stdout.
 *
 * Only the first packet of a connection goes through the NAT rules (later
 * ones follow its conntrack entry), so the number of completed handshakes
 * per second is what the ruleset's lookup cost shows in.
 *
 * The client closes each connection with a reset (SO_LINGER 0): no
 * TIME_WAIT, so the ephemeral ports do not run out during a run.
 *
 * This is a load generator: it refuses any destination outside
 * 198.18.0.0/15, the range set aside for benchmarks, which bench.py gives
 * only to the namespaces it creates itself; and it stops by itself.
 */
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

constexpr int kMaxSeconds = 60;
constexpr int kMaxConcurrency = 1024;

double nowSeconds()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

int parseBounded(const char *text, int min, int max, const char *what)
{
	char *end = nullptr;
	long v = std::strtol(text, &end, 10);
	if (!end || *end != '\0' || v < min || v > max) {
		std::fprintf(stderr, "conn_rate: %s must be %d..%d\n", what, min, max);
		std::exit(2);
	}
	return static_cast<int>(v);
}

int runServer(int port, int seconds)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = {};
	sa.sin_family = AF_INET;
	sa.sin_port = htons(static_cast<uint16_t>(port));
	sa.sin_addr.s_addr = htonl(INADDR_ANY);
	if (bind(fd, reinterpret_cast<struct sockaddr *>(&sa), sizeof(sa)) != 0 || listen(fd, 4096) != 0) {
		std::perror("conn_rate server: bind/listen");
		return 1;
	}
	std::printf("listening\n");
	std::fflush(stdout);

	double deadline = nowSeconds() + seconds;
	while (nowSeconds() < deadline) {
		/* poll with a timeout so that the deadline holds when idle. */
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 200) <= 0)
			continue;
		for (;;) {
			int c = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (c < 0)
				break;
			close(c);
			/* Keep draining, but not past the deadline. */
			if (nowSeconds() >= deadline)
				break;
		}
	}
	close(fd);
	return 0;
}

bool allowedDestination(const struct in_addr &a)
{
	/* 198.18.0.0/15 (RFC 2544 benchmarking). */
	uint32_t h = ntohl(a.s_addr);
	return (h & 0xfffe0000u) == 0xc6120000u;
}

int openConnect(int ep, const struct sockaddr_in &dst)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct linger lg = { 1, 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	int r = connect(fd, reinterpret_cast<const struct sockaddr *>(&dst), sizeof(dst));
	if (r != 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	struct epoll_event ev = {};
	ev.events = EPOLLOUT;
	ev.data.fd = fd;
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	return fd;
}

int runClient(const char *address, int port, int seconds, int concurrency)
{
	struct sockaddr_in dst = {};
	dst.sin_family = AF_INET;
	dst.sin_port = htons(static_cast<uint16_t>(port));
	if (inet_pton(AF_INET, address, &dst.sin_addr) != 1 || !allowedDestination(dst.sin_addr)) {
		std::fprintf(stderr, "conn_rate: %s is not an address in 198.18.0.0/15\n", address);
		return 2;
	}

	int ep = epoll_create1(EPOLL_CLOEXEC);
	long long done = 0, failed = 0;
	int inFlight = 0;
	double start = nowSeconds();
	double deadline = start + seconds;

	for (int i = 0; i < concurrency; i++) {
		if (openConnect(ep, dst) >= 0)
			inFlight++;
		else
			failed++;
	}

	struct epoll_event events[kMaxConcurrency];
	double now = start;
	while ((now = nowSeconds()) < deadline && inFlight > 0) {
		int n = epoll_wait(ep, events, kMaxConcurrency, 100);
		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;
			int err = 0;
			socklen_t len = sizeof(err);
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
			if (err == 0)
				done++;
			else
				failed++;
			/* Closing removes it from the epoll set; SO_LINGER 0 sends a reset. */
			close(fd);
			inFlight--;
			if (openConnect(ep, dst) >= 0)
				inFlight++;
			else
				failed++;
		}
	}
	std::printf("%lld %lld %.6f\n", done, failed, now - start);
	return 0;
}

} /* namespace */

int main(int argc, char **argv)
{
	if (argc == 4 && std::strcmp(argv[1], "server") == 0)
		return runServer(parseBounded(argv[2], 1, 65535, "PORT"),
				 parseBounded(argv[3], 1, 3600, "SECONDS"));
	if (argc == 6 && std::strcmp(argv[1], "client") == 0)
		return runClient(argv[2], parseBounded(argv[3], 1, 65535, "PORT"),
				 parseBounded(argv[4], 1, kMaxSeconds, "SECONDS"),
				 parseBounded(argv[5], 1, kMaxConcurrency, "CONCURRENCY"));
	std::fprintf(stderr, "usage: conn_rate server PORT SECONDS\n"
			     "       conn_rate client ADDRESS PORT SECONDS CONCURRENCY\n");
	return 2;
}
