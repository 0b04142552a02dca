/* clang-plugin/exports.cc - -gov-exports-of=RESOURCE: every function another
 * registered resource exports becomes a target.
 *
 * As in the GCC plugin (gcc-plugin/targets.cc): the plugin runs
 * `govctl [--store URL] exports RESOURCE` (docs/abi.md "Export lists") and
 * makes each name it prints a target, the `# untyped NAME` lines included;
 * the types of each site come from the prototype clang sees, as for any
 * target. govctl is the one given by -gov-govctl, else the one installed
 * beside the plugin (PREFIX/lib/clang-plugin -> PREFIX/bin, build/lib ->
 * build/bin), else the first on PATH. Its failures are errors quoting it.
 *
 * Not here: matching the targets (frontend.cc), the other options
 * (options.cc).
 */
#include "govintercept-llvm.h"

#include <cerrno>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

/* The directory this shared object was loaded from, with its '/'. */
static std::string plugin_dir(void)
{
	Dl_info info;
	if (!dladdr((void *)&gov_load_exports, &info) || !info.dli_fname)
		return "";
	std::string path = info.dli_fname;
	size_t slash = path.find_last_of('/');
	return slash == std::string::npos ? "" : path.substr(0, slash + 1);
}

static std::string find_govctl(void)
{
	if (!gov_opts.govctl.empty())
		return gov_opts.govctl;
	std::string dir = plugin_dir();
	if (!dir.empty())
		for (const char *rel : { "../bin/govctl", "../../bin/govctl" }) {
			std::string p = dir + rel;
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

static void add_exported_names(const std::string &out)
{
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
			gov_add_target(name, GOV_TARGET_FROM_EXPORTS);
	}
}

static void load_one(const std::string &resource, const std::string &govctl,
		     std::vector<std::string> *errors)
{
	std::vector<std::string> args = { govctl };
	if (!gov_opts.store.empty()) {
		args.push_back("--store");
		args.push_back(gov_opts.store);
	}
	args.push_back("exports");
	args.push_back(resource);
	std::string out, err;
	int rc = run_capture(args, &out, &err);
	std::string what = "-gov-exports-of=" + resource + ": ";
	if (rc == 127 || rc < 0)
		errors->push_back(what + "cannot run '" + govctl + "': " +
				  (rc < 0 ? strerror(errno) : trim(err)) +
				  " (give its path with -mllvm -gov-govctl=PATH)");
	else if (rc != 0)
		errors->push_back(what + govctl + " exited with " + std::to_string(rc) + ": " +
				  trim(err));
	else
		add_exported_names(out);
}

void gov_load_exports(std::vector<std::string> *errors)
{
	if (gov_opts.exports_of.empty())
		return;
	std::string govctl = find_govctl();
	for (const std::string &r : gov_opts.exports_of)
		load_one(r, govctl, errors);
}
