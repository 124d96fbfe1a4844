/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spawn_timer: runs a list of jobs one after the other and prints, for each,
 * the time from spawning the process to having reaped it, and its peak RSS.
 *
 * Every job, /bin/true as much as a plugin ADD or DEL, is started the same
 * way (posix_spawn, which is a vfork+exec in glibc, then wait4), so the
 * difference between two medians is the work of the program itself.
 *
 * The harness is linked statically and keeps almost nothing in memory: the
 * kernel carries the hiwater RSS of the address space a process had before
 * exec into its ru_maxrss, and a vforked child had ours, so a large harness
 * (Python, a dynamic C++ runtime) would inflate every peak RSS it reports.
 *
 * Input on stdin, one job per line, fields separated by tabs:
 *     label <TAB> program <TAB> env <TAB> stdin
 * env is a space-separated list of NAME=VALUE (no other variable is passed),
 * stdin is the rest of the line, given to the program as its standard input
 * (through a memfd, written before the clock starts). The program's stdout
 * and stderr go to a second memfd, shown on our stderr when it fails.
 *
 * Output on stdout, one line per job:
 *     label <TAB> nanoseconds <TAB> maxrss_kib <TAB> exit status <TAB> cpu_us
 * where cpu_us is the user + system CPU time of the process (and of the
 * children it waited for): what the wall time is left with once waiting,
 * for the kernel or for a CPU on a busy machine, is taken out.
 * With -k a failed job does not stop the run (exit status 1 at the end).
 */
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

struct Job {
	std::string label;
	std::string program;
	std::vector<std::string> env;
	std::string input;
};

std::vector<std::string> split(const std::string &s, char sep, size_t maxFields)
{
	std::vector<std::string> out;
	size_t start = 0;
	while (out.size() + 1 < maxFields) {
		size_t pos = s.find(sep, start);
		if (pos == std::string::npos)
			break;
		out.push_back(s.substr(start, pos - start));
		start = pos + 1;
	}
	out.push_back(s.substr(start));
	return out;
}

bool parseJob(const std::string &line, Job &job)
{
	std::vector<std::string> f = split(line, '\t', 4);
	if (f.size() != 4)
		return false;
	job.label = f[0];
	job.program = f[1];
	job.env.clear();
	for (const std::string &e : split(f[2], ' ', SIZE_MAX))
		if (!e.empty())
			job.env.push_back(e);
	job.input = f[3];
	return true;
}

bool readLine(std::string &line)
{
	line.clear();
	int c;
	while ((c = std::getchar()) != EOF) {
		if (c == '\n')
			return true;
		line.push_back(static_cast<char>(c));
	}
	return !line.empty();
}

/* Rewinds and refills a memfd with data. */
bool refill(int fd, const std::string &data)
{
	if (ftruncate(fd, 0) != 0)
		return false;
	size_t done = 0;
	while (done < data.size()) {
		ssize_t n = pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(done));
		if (n <= 0)
			return false;
		done += static_cast<size_t>(n);
	}
	return lseek(fd, 0, SEEK_SET) == 0;
}

long long nowNs()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

void showOutput(int fd, const Job &job)
{
	char buf[2048];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	std::fprintf(stderr, "spawn_timer: job %s (%s) failed; its output:\n%s\n", job.label.c_str(),
		     job.program.c_str(), buf);
}

} /* namespace */

int main(int argc, char **argv)
{
	bool keepGoing = argc > 1 && std::strcmp(argv[1], "-k") == 0;

	int inFd = memfd_create("spawn_timer-stdin", 0);
	int outFd = memfd_create("spawn_timer-stdout", 0);
	if (inFd < 0 || outFd < 0) {
		std::perror("memfd_create");
		return 2;
	}

	/* The same file actions for every job: stdin, stdout and stderr. */
	posix_spawn_file_actions_t actions;
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_adddup2(&actions, inFd, 0);
	posix_spawn_file_actions_adddup2(&actions, outFd, 1);
	posix_spawn_file_actions_adddup2(&actions, outFd, 2);

	bool failed = false;
	std::string line;
	Job job;
	while (readLine(line)) {
		if (line.empty())
			continue;
		if (!parseJob(line, job)) {
			std::fprintf(stderr, "spawn_timer: malformed job line: %.80s\n", line.c_str());
			return 2;
		}
		if (!refill(inFd, job.input) || ftruncate(outFd, 0) != 0 || lseek(outFd, 0, SEEK_SET) != 0) {
			std::perror("spawn_timer: memfd");
			return 2;
		}

		std::vector<char *> args{ job.program.data(), nullptr };
		std::vector<char *> envp;
		for (std::string &e : job.env)
			envp.push_back(e.data());
		envp.push_back(nullptr);

		struct rusage ru = {};
		int status = 0;
		pid_t pid;

		long long start = nowNs();
		int err = posix_spawn(&pid, job.program.c_str(), &actions, nullptr, args.data(), envp.data());
		if (err != 0) {
			std::fprintf(stderr, "spawn_timer: %s: %s\n", job.program.c_str(), std::strerror(err));
			return 2;
		}
		while (wait4(pid, &status, 0, &ru) < 0) {
			if (errno != EINTR) {
				std::perror("wait4");
				return 2;
			}
		}
		long long elapsed = nowNs() - start;

		int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		long long cpuUs = (static_cast<long long>(ru.ru_utime.tv_sec) + ru.ru_stime.tv_sec) * 1000000LL +
				  ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
		std::printf("%s\t%lld\t%ld\t%d\t%lld\n", job.label.c_str(), elapsed, ru.ru_maxrss, code, cpuUs);
		if (code != 0) {
			showOutput(outFd, job);
			failed = true;
			if (!keepGoing)
				break;
		}
	}
	std::fflush(stdout);
	posix_spawn_file_actions_destroy(&actions);
	return failed ? 1 : 0;
}
