/* plugin-common/targets.cc - where targets come from besides the command
 * line, for both plugins: a targets-file, and the export list of another
 * resource, which govctl prints (`govctl [--store URL] exports RESOURCE`,
 * docs/abi.md "Export lists").
 *
 * Not here: matching targets against a unit's declarations, and the wording
 * of errors (each plugin reports what these return in its own diagnostics).
 */
#include "plugin_common.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

bool gov_read_targets_file(const char *path, std::vector<std::string> *globs)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	char line[4096];
	while (fgets(line, sizeof line, f)) {
		char *s = line;
		while (*s == ' ' || *s == '\t')
			s++;
		char *hash = strchr(s, '#');
		if (hash)
			*hash = 0;
		size_t n = strlen(s);
		while (n && strchr(" \t\r\n", s[n - 1]))
			s[--n] = 0;
		if (n)
			globs->push_back(s);
	}
	bool ok = !ferror(f);
	int saved = errno;
	fclose(f);
	errno = saved;
	return ok;
}

std::string gov_find_govctl(const std::string &given, const std::string &plugin_dir)
{
	if (!given.empty())
		return given;
	if (!plugin_dir.empty())
		for (const char *rel : { "../bin/govctl", "../../bin/govctl" }) {
			std::string p = plugin_dir + rel;
			if (access(p.c_str(), X_OK) == 0)
				return p;
		}
	return "govctl";   /* execvp searches PATH */
}

static void drain(int fd, std::string *into)
{
	char buf[4096];
	ssize_t n;
	while ((n = read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
		if (n > 0)
			into->append(buf, n);
}

/* Runs argv; its exit status (-1: could not start it, errno set), stdout
 * and stderr. A child that cannot exec writes strerror to stderr, exit 127. */
static int run_capture(const std::vector<std::string> &args, std::string *out, std::string *err)
{
	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(pe, O_CLOEXEC) < 0) {
		close(po[0]);
		close(po[1]);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		std::vector<char *> argv;
		for (const std::string &a : args)
			argv.push_back(const_cast<char *>(a.c_str()));
		argv.push_back(nullptr);
		execvp(argv[0], argv.data());
		dprintf(2, "%s", strerror(errno));
		_exit(127);
	}
	int saved = errno;
	close(po[1]);
	close(pe[1]);
	if (pid < 0) {
		close(po[0]);
		close(pe[0]);
		errno = saved;
		return -1;
	}
	drain(po[0], out);   /* stderr is small: stdout first, then stderr */
	drain(pe[0], err);
	close(po[0]);
	close(pe[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static std::string trim(const std::string &s)
{
	size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
	return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

bool gov_exported_names(const std::string &govctl, const std::string &store,
			const std::string &resource, std::vector<std::string> *names,
			std::string *why, bool *not_run)
{
	std::vector<std::string> args = { govctl };
	if (!store.empty()) {
		args.push_back("--store");
		args.push_back(store);
	}
	args.push_back("exports");
	args.push_back(resource);
	std::string out, err;
	int rc = run_capture(args, &out, &err);
	*not_run = rc == 127 || rc < 0;
	if (*not_run) {
		*why = "cannot run '" + govctl + "': " + (rc < 0 ? strerror(errno) : trim(err));
		return false;
	}
	if (rc != 0) {
		*why = govctl + " exited with " + std::to_string(rc) + ": " + trim(err);
		return false;
	}
	size_t at = 0;
	while (at < out.size()) {
		size_t nl = out.find('\n', at);
		std::string line = out.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
		at = nl == std::string::npos ? out.size() : nl + 1;
		std::string name;
		if (line.compare(0, 10, "# untyped ") == 0)
			name = trim(line.substr(10));
		else if (!line.empty() && line[0] != '#')
			name = line.substr(0, line.find_first_of(" \t"));
		if (!name.empty())
			names->push_back(name);
	}
	return true;
}
