/* rules/dynamic/build.c - the toolchain side of dynamic rules: compiling
 * rule sources with clang and running wabt's tools, with their complaints
 * kept for the error message. See build.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "gov/dynrule.h"
#include "build.h"

#ifndef GOV_INCLUDE_DIR
#define GOV_INCLUDE_DIR "/usr/local/include"
#endif

int gov_dyn_cmd(char *const argv[], char *err, size_t errlen)
{
	char tmpl[] = "/tmp/gov-dyn-cmd.XXXXXX";
	int efd = mkstemp(tmpl);
	if (efd < 0) {
		snprintf(err, errlen, "cannot make a temporary file: %s", strerror(errno));
		return -1;
	}
	unlink(tmpl);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(efd, 2);
		dup2(efd, 1);
		execvp(argv[0], argv);
		fprintf(stderr, "cannot run %s: %s (is it installed?)\n", argv[0], strerror(errno));
		_exit(127);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) < 0) {
		snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(errno));
		close(efd);
		return -1;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		close(efd);
		return 0;
	}
	char out[2048];
	ssize_t n = pread(efd, out, sizeof out - 1, 0);
	close(efd);
	out[n > 0 ? n : 0] = 0;
	/* the lines that say "error" say it (else the first ones): on one line */
	char pick[2048] = "";
	size_t o = 0;
	for (int pass = 0; pass < 2 && !o; pass++) {
		int lines = 0;
		char *save = NULL, *copy = strdup(out);
		for (char *l = copy ? strtok_r(copy, "\n", &save) : NULL; l && lines < 3;
		     l = strtok_r(NULL, "\n", &save)) {
			if (pass == 0 && !strstr(l, "error") && !strstr(l, "undefined reference"))
				continue;
			o += (size_t)snprintf(pick + o, sizeof pick - o, "%s%s", lines++ ? " / " : "", l);
			if (o >= sizeof pick)
				o = sizeof pick - 1;
		}
		free(copy);
	}
	snprintf(out, sizeof out, "%s", pick);
	snprintf(err, errlen, "%s failed: %s", argv[0], out[0] ? out : "(no message)");
	return -1;
}

int gov_dyn_read(const char *path, void **buf, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	size_t cap = 65536, n = 0;
	char *b = malloc(cap);
	for (size_t r; b && (r = fread(b + n, 1, cap - n, f)) > 0;) {
		n += r;
		if (n == cap) {
			char *t = realloc(b, cap *= 2);
			if (!t)
				free(b);
			b = t;
		}
	}
	int bad = ferror(f) || !b;
	fclose(f);
	if (bad) {
		free(b);
		snprintf(err, errlen, "%s: cannot read", path);
		return -1;
	}
	*buf = b;
	*len = n;
	return 0;
}

int gov_dyn_cache_dir(char *buf, size_t len, char *err, size_t errlen)
{
	const char *d = getenv("GOV_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
	int n;
	if (d && *d)
		n = snprintf(buf, len, "%s", d);
	else if (x && *x)
		n = snprintf(buf, len, "%s/rhodes", x);
	else
		n = snprintf(buf, len, "%s/.cache/rhodes", h && *h ? h : "/tmp");
	if (n < 0 || (size_t)n >= len) {
		snprintf(err, errlen, "cache directory name too long");
		return -1;
	}
	/* mkdir -p */
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || !*p) {
			char c = *p;
			*p = 0;
			if (mkdir(buf, 0700) < 0 && errno != EEXIST) {
				snprintf(err, errlen, "cannot create %s: %s", buf, strerror(errno));
				return -1;
			}
			*p = c;
			if (!c)
				break;
		}
	}
	return 0;
}

int gov_dyn_compile(int mode, const char *src, void **obj, size_t *len,
		    char *err, size_t errlen)
{
	char out[] = "/tmp/gov-dyn-obj.XXXXXX";
	int fd = mkstemp(out);
	if (fd < 0) {
		snprintf(err, errlen, "cannot make a temporary file: %s", strerror(errno));
		return -1;
	}
	close(fd);
	const char *inc = getenv("GOV_INCLUDE_DIR");
	char incflag[PATH_MAX + 3];
	snprintf(incflag, sizeof incflag, "-I%s", inc && *inc ? inc : GOV_INCLUDE_DIR);
	char *bpf[] = { "clang", "-O2", "-g0", "-ffreestanding", "-target", "bpf", incflag,
			"-c", (char *)src, "-o", out, NULL };
	char *wasm[] = { "clang", "-O2", "-ffreestanding", "--target=wasm32", "-nostdlib",
			 "-Wl,--no-entry", incflag, (char *)src, "-o", out, NULL };
	char why[1500];
	int r = gov_dyn_cmd(mode == GOV_DYN_WASM ? wasm : bpf, why, sizeof why);
	if (r == 0)
		r = gov_dyn_read(out, obj, len, why, sizeof why);
	if (r < 0)
		snprintf(err, errlen, "%s: cannot compile: %s", src, why);
	unlink(out);
	return r;
}
