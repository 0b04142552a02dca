/* bench/common.c - helpers shared by the benchmarks (bench/common.h). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include "common.h"

uint64_t bench_process_cpu_ns(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	uint64_t sum = 0;
	for (struct dirent *e; d && (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char p[384];
		snprintf(p, sizeof p, "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
		FILE *f = fopen(p, "r");
		unsigned long long ns;
		if (f && fscanf(f, "%llu", &ns) == 1)
			sum += ns;
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return sum;
}

void bench_machine_line(FILE *f, const char *command)
{
	struct utsname u;
	uname(&u);
	char model[128] = "?";
	FILE *ci = fopen("/proc/cpuinfo", "r");
	for (char line[256]; ci && fgets(line, sizeof line, ci);)
		if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
			snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
			model[strcspn(model, "\n")] = 0;
			break;
		}
	if (ci)
		fclose(ci);
	time_t now = time(NULL);
	char date[32];
	strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
	double load[1] = { 0 };
	getloadavg(load, 1);
	fprintf(f, "Command: `%s`. Measured %s on %s %s, %ld CPUs (%s); load average %.1f "
		"when written.\n", command, date, u.sysname, u.release,
		sysconf(_SC_NPROCESSORS_ONLN), model, load[0]);
}

static char *read_all(const char *path, size_t *len)
{
	FILE *in = fopen(path, "r");
	char *text = NULL;
	*len = 0;
	if (!in)
		return NULL;
	fseek(in, 0, SEEK_END);
	long n = ftell(in);
	rewind(in);
	if (n > 0 && (text = calloc(1, (size_t)n + 1)) && fread(text, 1, (size_t)n, in) == (size_t)n)
		*len = (size_t)n;
	fclose(in);
	return text;
}

int bench_write_section(const char *path, const char *name,
			void (*body)(FILE *f, void *arg), void *arg)
{
	char begin[128], end[128], tmp[PATH_MAX];
	snprintf(begin, sizeof begin, "<!-- %s: begin -->\n", name);
	snprintf(end, sizeof end, "<!-- %s: end -->\n", name);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	/* The section replaces the file by rename: never over a device or a
	 * directory (as root, --markdown /dev/null would replace /dev/null). */
	struct stat st;
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		fprintf(stderr, "%s: not a regular file; --markdown wants a Markdown file\n", path);
		return -1;
	}
	size_t oldlen;
	char *old = read_all(path, &oldlen);
	FILE *f = fopen(tmp, "w");
	if (!f) {
		free(old);
		return -1;
	}
	char *b = oldlen ? strstr(old, begin) : NULL, *e = b ? strstr(b, end) : NULL;
	if (b && e) {
		fwrite(old, 1, (size_t)(b - old), f);
	} else if (oldlen) {
		fputs(old, f);
		/* a blank line between the last section and this one */
		if (old[oldlen - 1] != '\n')
			fputc('\n', f);
		if (oldlen < 2 || strcmp(old + oldlen - 2, "\n\n") != 0)
			fputc('\n', f);
	} else {
		fputs("# Benchmarks\n\nWritten by `make bench`; each section by its own benchmark.\n\n", f);
	}
	fputs(begin, f);
	body(f, arg);
	fputs(end, f);
	if (b && e)
		fputs(e + strlen(end), f);
	free(old);
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double bench_median(const double *v, int n)
{
	double *s = malloc((size_t)n * sizeof *s);
	if (!s)
		return 0;
	memcpy(s, v, (size_t)n * sizeof *s);
	qsort(s, (size_t)n, sizeof *s, cmp_double);
	double m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	free(s);
	return m;
}

double bench_quartiles(const double *v, int n, double *q1, double *q3)
{
	double *s = malloc((size_t)n * sizeof *s);
	if (!s)
		return *q1 = *q3 = 0;
	memcpy(s, v, (size_t)n * sizeof *s);
	qsort(s, (size_t)n, sizeof *s, cmp_double);
	*q1 = s[n / 4];
	*q3 = s[(3 * n) / 4];
	free(s);
	return bench_median(v, n);
}

double bench_min(const double *v, int n)
{
	double m = v[0];
	for (int i = 1; i < n; i++)
		m = v[i] < m ? v[i] : m;
	return m;
}

double bench_max(const double *v, int n)
{
	double m = v[0];
	for (int i = 1; i < n; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}

int bench_governed_run(const char *name, const char *resource, long timeout_ms, char **argv,
		       char *dir, size_t len)
{
	const char *again = getenv("GOV_BENCH_RUN_DIR");
	if (again) {
		snprintf(dir, len, "%s", again);
		return 0;
	}
	char made[PATH_MAX], ms[32];
	snprintf(made, sizeof made, "/tmp/bench-%s.XXXXXX", name);
	if (!mkdtemp(made)) {
		fprintf(stderr, "bench/%s: %s: %s\n", name, made, strerror(errno));
		return -1;
	}
	snprintf(ms, sizeof ms, "%ld", timeout_ms);
	setenv("GOV_RUN_DIR", made, 1);
	setenv("GOV_RESOURCE", resource, 1);
	setenv("GOV_TIMEOUT_MS", ms, 1);
	setenv("GOV_BENCH_RUN_DIR", made, 1);
	execv("/proc/self/exe", argv);
	fprintf(stderr, "bench/%s: running itself again: %s\n", name, strerror(errno));
	rmdir(made);
	return -1;
}
